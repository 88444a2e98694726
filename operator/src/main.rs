use std::process::ExitCode;

fn main() -> ExitCode {
    let cmd = std::env::args().nth(1);
    match cmd.as_deref() {
        Some("crd") => match mas_operator::crd::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mas-operator: cannot render CRD: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: mas-operator <crd|run>");
            ExitCode::from(2)
        }
    }
}
