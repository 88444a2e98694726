//! Invoice PDFs.
//!
//! Made with `printpdf` (0.12): actively maintained (several releases a year, the
//! current API rewritten in 2025), MIT, pure Rust, and — with default features off —
//! small: builtin PDF fonts (Helvetica) need no font file in the image, which matters
//! for the distroless runtime. `genpdf` was the other candidate but its last release
//! (0.2.0) is from 2021 and it needs TTF files; `krilla` is maintained too but always
//! embeds a TTF/OTF font. Text is kept to ASCII (amounts say "INR"), which the
//! builtin fonts' WinAnsi encoding shows and `pdftotext` extracts exactly.

use chrono::{DateTime, Utc};
use printpdf::{
    BuiltinFont, Mm, Op, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, TextItem,
};

/// Everything printed on an invoice.
#[derive(Debug, Clone)]
pub struct InvoiceData {
    pub invoice_number: String,
    pub issued_at: DateTime<Utc>,
    pub customer_name: String,
    pub customer_email: String,
    pub item: String,
    pub amount_paise: i64,
    pub currency: String,
    pub razorpay_order_id: String,
    pub razorpay_payment_id: String,
}

/// `123456` paise → `1234.56`.
pub fn format_amount(paise: i64) -> String {
    let sign = if paise < 0 { "-" } else { "" };
    let p = paise.unsigned_abs();
    format!("{sign}{}.{:02}", p / 100, p % 100)
}

/// Keeps printable ASCII (the builtin fonts' safe range); anything else becomes '?'.
fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .take(120)
        .collect()
}

/// The invoice as PDF bytes (A4, one page).
pub fn render(data: &InvoiceData) -> Vec<u8> {
    let mut lines: Vec<(BuiltinFont, f32, String)> = vec![
        (
            BuiltinFont::HelveticaBold,
            20.0,
            "MAS - My Analytics School".into(),
        ),
        (BuiltinFont::Helvetica, 11.0, String::new()),
        (BuiltinFont::HelveticaBold, 16.0, "Invoice".into()),
        (
            BuiltinFont::Helvetica,
            11.0,
            format!("Invoice number: {}", data.invoice_number),
        ),
        (
            BuiltinFont::Helvetica,
            11.0,
            format!("Date: {}", data.issued_at.format("%Y-%m-%d")),
        ),
        (BuiltinFont::Helvetica, 11.0, String::new()),
        (
            BuiltinFont::Helvetica,
            11.0,
            format!("Billed to: {}", data.customer_name),
        ),
        (
            BuiltinFont::Helvetica,
            11.0,
            format!("Email: {}", data.customer_email),
        ),
        (BuiltinFont::Helvetica, 11.0, String::new()),
        (BuiltinFont::HelveticaBold, 12.0, "Item".into()),
        (BuiltinFont::Helvetica, 11.0, data.item.clone()),
        (BuiltinFont::Helvetica, 11.0, String::new()),
        (
            BuiltinFont::HelveticaBold,
            12.0,
            format!(
                "Amount paid: {} {}",
                data.currency,
                format_amount(data.amount_paise)
            ),
        ),
        (BuiltinFont::Helvetica, 11.0, String::new()),
        (
            BuiltinFont::Helvetica,
            9.0,
            format!("Razorpay order: {}", data.razorpay_order_id),
        ),
        (
            BuiltinFont::Helvetica,
            9.0,
            format!("Razorpay payment: {}", data.razorpay_payment_id),
        ),
    ];
    for line in &mut lines {
        line.2 = ascii(&line.2);
    }

    let mut ops = vec![
        Op::StartTextSection,
        Op::SetTextCursor {
            pos: Point::new(Mm(20.0), Mm(270.0)),
        },
    ];
    for (font, size, text) in lines {
        ops.push(Op::SetFont {
            font: PdfFontHandle::Builtin(font),
            size: Pt(size),
        });
        ops.push(Op::SetLineHeight { lh: Pt(size * 1.6) });
        if !text.is_empty() {
            ops.push(Op::ShowText {
                items: vec![TextItem::Text(text)],
            });
        }
        ops.push(Op::AddLineBreak);
    }
    ops.push(Op::EndTextSection);

    let mut doc = PdfDocument::new(&format!("Invoice {}", ascii(&data.invoice_number)));
    let mut warnings = Vec::new();
    doc.with_pages(vec![PdfPage::new(Mm(210.0), Mm(297.0), ops)])
        .save(&PdfSaveOptions::default(), &mut warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_print_in_rupees_and_paise() {
        assert_eq!(format_amount(0), "0.00");
        assert_eq!(format_amount(5), "0.05");
        assert_eq!(format_amount(4999900), "49999.00");
        assert_eq!(format_amount(123456), "1234.56");
    }

    #[test]
    fn renders_a_pdf() {
        let pdf = render(&InvoiceData {
            invoice_number: "MAS-2026-000001".into(),
            issued_at: Utc::now(),
            customer_name: "Aarti Rao".into(),
            customer_email: "aarti@example.com".into(),
            item: "Course: Data Analytics".into(),
            amount_paise: 499_900,
            currency: "INR".into(),
            razorpay_order_id: "order_1".into(),
            razorpay_payment_id: "pay_1".into(),
        });
        assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
        assert!(pdf.len() > 500);
    }
}
