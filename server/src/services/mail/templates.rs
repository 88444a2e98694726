//! Plain-text + HTML bodies for the transactional mails. Template names follow the
//! outbox rows written by the auth and booking flows; payload values are escaped
//! before they reach HTML.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Files attached to the mail (invoices).
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unknown email template {0:?}")]
    Unknown(String),
    #[error("email template {template:?} needs payload field {field:?}")]
    MissingField {
        template: &'static str,
        field: &'static str,
    },
    #[error("email attachment {0:?} is not valid base64")]
    BadAttachment(String),
}

pub fn render(template: &str, payload: &Value) -> Result<Rendered, TemplateError> {
    match template {
        "otp_verification" | "verify_email" | "email_verification" => otp(payload),
        "password_reset" | "reset_password" => password_reset(payload),
        "registration_attempt" => registration_attempt(payload),
        "meeting_notification" | "meeting_scheduled" | "meeting_cancelled" => {
            meeting(template, payload)
        }
        "payment_invoice" => invoice(payload),
        other => Err(TemplateError::Unknown(other.to_string())),
    }
}

fn field(
    p: &Value,
    template: &'static str,
    names: &[&'static str],
) -> Result<String, TemplateError> {
    for name in names {
        match p.get(*name) {
            Some(Value::String(s)) if !s.is_empty() => return Ok(s.clone()),
            Some(Value::Number(n)) => return Ok(n.to_string()),
            _ => {}
        }
    }
    Err(TemplateError::MissingField {
        template,
        field: names[0],
    })
}

fn optional(p: &Value, name: &str) -> Option<String> {
    match p.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn greeting(p: &Value) -> String {
    optional(p, "name").map_or_else(|| "Hello,".to_string(), |n| format!("Hello {n},"))
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body style=\"font-family:Arial,sans-serif;color:#222;max-width:560px;margin:auto\">\
         {body}<p style=\"color:#888;font-size:12px\">My Analytics School</p></body></html>",
        escape(title)
    )
}

fn minutes(p: &Value) -> String {
    optional(p, "expiresInMinutes").unwrap_or_else(|| "10".to_string())
}

fn otp(p: &Value) -> Result<Rendered, TemplateError> {
    let code = field(p, "otp_verification", &["code", "otp"])?;
    let subject = "Your MAS verification code".to_string();
    let mins = minutes(p);
    let text = format!(
        "{}\n\nYour verification code is: {code}\n\nIt expires in {mins} minutes. \
         If you did not request it, ignore this email.\n",
        greeting(p)
    );
    let html = html_page(
        &subject,
        &format!(
            "<p>{}</p><p>Your verification code is:</p>\
             <p style=\"font-size:28px;letter-spacing:4px\"><strong>{}</strong></p>\
             <p>It expires in {} minutes. If you did not request it, ignore this email.</p>",
            escape(&greeting(p)),
            escape(&code),
            escape(&mins)
        ),
    );
    Ok(Rendered {
        subject,
        text,
        html,
        attachments: Vec::new(),
    })
}

fn password_reset(p: &Value) -> Result<Rendered, TemplateError> {
    let code = optional(p, "code").or_else(|| optional(p, "otp"));
    let url = optional(p, "resetUrl");
    if code.is_none() && url.is_none() {
        return Err(TemplateError::MissingField {
            template: "password_reset",
            field: "code",
        });
    }
    let subject = "Reset your MAS password".to_string();
    let mins = minutes(p);
    let mut text = format!(
        "{}\n\nWe received a request to reset your password.\n",
        greeting(p)
    );
    let mut html = format!(
        "<p>{}</p><p>We received a request to reset your password.</p>",
        escape(&greeting(p))
    );
    if let Some(code) = &code {
        text.push_str(&format!("Your reset code is: {code}\n"));
        html.push_str(&format!(
            "<p>Your reset code is: <strong style=\"font-size:24px\">{}</strong></p>",
            escape(code)
        ));
    }
    if let Some(url) = &url {
        text.push_str(&format!("Reset it here: {url}\n"));
        html.push_str(&format!("<p><a href=\"{0}\">{0}</a></p>", escape(url)));
    }
    text.push_str(&format!(
        "\nThis expires in {mins} minutes. If you did not ask for it, ignore this email.\n"
    ));
    html.push_str(&format!(
        "<p>This expires in {} minutes. If you did not ask for it, ignore this email.</p>",
        escape(&mins)
    ));
    Ok(Rendered {
        subject,
        text,
        html: html_page("Reset your MAS password", &html),
        attachments: Vec::new(),
    })
}

/// Sent instead of an error when someone registers with an address that already has
/// an account: the owner learns of it, the person registering learns nothing.
fn registration_attempt(p: &Value) -> Result<Rendered, TemplateError> {
    let subject = "Someone tried to register with your email address".to_string();
    let text = format!(
        "{}\n\nSomeone tried to create a new MAS account with this email address, which \
         already has one. If it was you, log in instead, or reset your password if you \
         forgot it. If it was not you, you can ignore this email: your account is unchanged.\n",
        greeting(p)
    );
    let html = html_page(
        &subject,
        &format!(
            "<p>{}</p><p>Someone tried to create a new MAS account with this email address, \
             which already has one.</p><p>If it was you, log in instead, or reset your \
             password if you forgot it. If it was not you, you can ignore this email: your \
             account is unchanged.</p>",
            escape(&greeting(p))
        ),
    );
    Ok(Rendered {
        subject,
        text,
        html,
        attachments: Vec::new(),
    })
}

fn meeting(template: &str, p: &Value) -> Result<Rendered, TemplateError> {
    let starts_at = field(p, "meeting_notification", &["startsAt"])?;
    let with = optional(p, "withName").or_else(|| optional(p, "mentorName"));
    let cancelled =
        template == "meeting_cancelled" || optional(p, "event").as_deref() == Some("cancelled");
    let what = if cancelled { "cancelled" } else { "scheduled" };
    let subject = match &with {
        Some(w) => format!("Meeting {what} with {w}"),
        None => format!("Meeting {what}"),
    };
    let mut text = format!(
        "{}\n\nYour meeting on {starts_at} is {what}.\n",
        greeting(p)
    );
    let mut html = format!(
        "<p>{}</p><p>Your meeting on <strong>{}</strong> is {what}.</p>",
        escape(&greeting(p)),
        escape(&starts_at)
    );
    if let Some(w) = &with {
        text.push_str(&format!("With: {w}\n"));
        html.push_str(&format!("<p>With: {}</p>", escape(w)));
    }
    if let (false, Some(url)) = (cancelled, optional(p, "joinUrl")) {
        text.push_str(&format!("Join: {url}\n"));
        html.push_str(&format!(
            "<p><a href=\"{0}\">Join the meeting</a> ({0})</p>",
            escape(&url)
        ));
    }
    Ok(Rendered {
        html: html_page(&subject, &html),
        subject,
        text,
        attachments: Vec::new(),
    })
}

/// The payment receipt mail; the invoice PDF rides along as `attachments`
/// (`[{filename, contentType, base64}]`).
fn invoice(p: &Value) -> Result<Rendered, TemplateError> {
    let number = field(p, "payment_invoice", &["invoiceNumber"])?;
    let amount = field(p, "payment_invoice", &["amount"])?;
    let item = optional(p, "item").unwrap_or_else(|| "your purchase".to_string());
    let subject = format!("Your MAS invoice {number}");
    let text = format!(
        "{}\n\nThank you for your payment of {amount} for {item}.\n\
         Your invoice {number} is attached.\n",
        greeting(p)
    );
    let html = html_page(
        &subject,
        &format!(
            "<p>{}</p><p>Thank you for your payment of <strong>{}</strong> for {}.</p>\
             <p>Your invoice {} is attached.</p>",
            escape(&greeting(p)),
            escape(&amount),
            escape(&item),
            escape(&number)
        ),
    );
    let mut attachments = Vec::new();
    for a in p["attachments"].as_array().into_iter().flatten() {
        use base64::Engine as _;
        let filename = a["filename"].as_str().unwrap_or("attachment").to_string();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(a["base64"].as_str().unwrap_or(""))
            .map_err(|_| TemplateError::BadAttachment(filename.clone()))?;
        attachments.push(Attachment {
            content_type: a["contentType"]
                .as_str()
                .unwrap_or("application/octet-stream")
                .to_string(),
            filename,
            bytes,
        });
    }
    Ok(Rendered {
        subject,
        text,
        html,
        attachments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn otp_renders_code_in_both_parts_and_escapes() {
        let r = render(
            "verify_email",
            &json!({"code": "123456", "name": "<b>Ann</b>"}),
        )
        .unwrap();
        assert!(r.text.contains("123456") && r.html.contains("123456"));
        assert!(r.html.contains("&lt;b&gt;Ann") && !r.html.contains("<b>Ann"));
    }

    #[test]
    fn missing_fields_and_unknown_templates_are_errors() {
        assert_eq!(
            render("otp_verification", &json!({})).unwrap_err(),
            TemplateError::MissingField {
                template: "otp_verification",
                field: "code"
            }
        );
        assert!(matches!(
            render("nope", &json!({})),
            Err(TemplateError::Unknown(_))
        ));
        assert!(render("password_reset", &json!({})).is_err());
    }

    #[test]
    fn meeting_mentions_time_and_join_link() {
        let r = render(
            "meeting_notification",
            &json!({"startsAt": "2026-12-01 10:00 UTC", "withName": "Mentor M", "joinUrl": "https://m/x"}),
        )
        .unwrap();
        assert_eq!(r.subject, "Meeting scheduled with Mentor M");
        assert!(r.text.contains("https://m/x") && r.html.contains("2026-12-01 10:00 UTC"));
    }
}
