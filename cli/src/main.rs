//! `mas-terminal`: pairs this machine's shell with the browser terminal.
//!
//! Usage: `mas-terminal --url https://app.example.com --token <pairing token> [--shell /bin/bash]`
//! (or `MAS_URL` / `MAS_PAIRING_TOKEN` / `SHELL`). The shell starts in a PTY once
//! the browser side is paired; its output goes to the browser as binary frames,
//! browser input comes back as binary frames and `{"type":"resize"}` as text.
//! When the relay restarts (close 1012) the CLI reconnects with the same token and
//! the shell keeps running.

mod pty;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::pty::Shell;

struct Args {
    url: String,
    token: String,
    shell: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut url = std::env::var("MAS_URL").ok();
    let mut token = std::env::var("MAS_PAIRING_TOKEN").ok();
    let mut shell = std::env::var("SHELL").ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--url" => url = args.next(),
            "--token" => token = args.next(),
            "--shell" => shell = args.next(),
            "-h" | "--help" => {
                println!(
                    "usage: mas-terminal --url <server url> --token <pairing token> [--shell <path>]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    Ok(Args {
        url: url.context("--url (or MAS_URL) is required")?,
        token: token.context("--token (or MAS_PAIRING_TOKEN) is required")?,
        shell: shell.unwrap_or_else(|| "/bin/sh".into()),
    })
}

/// `https://host` → `wss://host/api/terminal/relay`.
fn relay_url(base: &str) -> anyhow::Result<String> {
    let base = base.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_string()
    } else {
        bail!("--url must start with http://, https://, ws:// or wss://");
    };
    Ok(if ws.ends_with("/api/terminal/relay") {
        ws
    } else {
        format!("{ws}/api/terminal/relay")
    })
}

enum SessionEnd {
    /// The shell exited or the browser left: we are done.
    Finished,
    /// The relay is restarting: connect again with the same token.
    Reconnect,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mas-terminal: {err:#}");
            ExitCode::from(1)
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let args = parse_args()?;
    let url = relay_url(&args.url)?;
    let mut shell: Option<Shell> = None;
    let mut attempt = 0u32;
    loop {
        match session(&url, &args, &mut shell).await? {
            SessionEnd::Finished => return Ok(()),
            SessionEnd::Reconnect => {
                attempt += 1;
                if attempt > 10 {
                    bail!("relay kept restarting; giving up");
                }
                eprintln!("mas-terminal: relay restarting, reconnecting…");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
        }
    }
}

async fn session(url: &str, args: &Args, shell: &mut Option<Shell>) -> anyhow::Result<SessionEnd> {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let (mut sink, mut stream) = ws.split();
    sink.send(Message::text(
        json!({ "token": args.token, "role": "cli" }).to_string(),
    ))
    .await
    .context("sending the pairing handshake")?;

    // Until paired, only notices (or a refusal) arrive.
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) => {
                let notice: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                match notice["type"].as_str() {
                    Some("waiting") => eprintln!("mas-terminal: waiting for the browser terminal…"),
                    Some("paired") => break,
                    _ => {}
                }
            }
            Some(Ok(Message::Close(frame))) => return refused(frame),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e).context("relay connection failed"),
            None => bail!("relay closed the connection"),
        }
    }
    eprintln!("mas-terminal: paired; shell is live");

    if shell.is_none() {
        *shell = Some(Shell::spawn(&args.shell).context("starting the shell in a PTY")?);
    }
    let Some(sh) = shell.as_mut() else {
        bail!("shell unavailable")
    };

    loop {
        tokio::select! {
            output = sh.output.recv() => match output {
                Some(bytes) => sink.send(Message::binary(bytes)).await.context("sending output")?,
                None => {
                    // Shell exited.
                    let _ = sink.send(Message::Close(None)).await;
                    return Ok(SessionEnd::Finished);
                }
            },
            frame = stream.next() => match frame {
                Some(Ok(Message::Binary(bytes))) => sh.write(bytes.to_vec())?,
                Some(Ok(Message::Text(text))) => {
                    match serde_json::from_str::<Value>(text.as_str()) {
                        Ok(v) if v["type"] == "resize" => {
                            let cols = v["cols"].as_u64().unwrap_or(80).clamp(1, 1000) as u16;
                            let rows = v["rows"].as_u64().unwrap_or(24).clamp(1, 1000) as u16;
                            sh.resize(cols, rows);
                        }
                        _ => sh.write(text.as_str().as_bytes().to_vec())?,
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.as_ref().map(|f| u16::from(f.code));
                    // 1012 relay restarting, 4010 browser's relay vanished: the
                    // token still holds our seat, so come back with it.
                    if matches!(code, Some(1012 | 4010)) {
                        return Ok(SessionEnd::Reconnect);
                    }
                    let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                    eprintln!("mas-terminal: session ended ({reason})");
                    return Ok(SessionEnd::Finished);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Ok(SessionEnd::Reconnect),
            },
        }
    }
}

fn refused(
    frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>,
) -> anyhow::Result<SessionEnd> {
    match frame {
        Some(f) if f.code == CloseCode::Restart => Ok(SessionEnd::Reconnect),
        Some(f) if u16::from(f.code) == 4008 => {
            bail!("no browser terminal connected before the token expired")
        }
        Some(f) => bail!(
            "relay refused the pairing: {} (code {})",
            f.reason,
            u16::from(f.code)
        ),
        None => bail!("relay closed the connection"),
    }
}

#[cfg(test)]
mod tests {
    use super::relay_url;

    #[test]
    fn server_urls_map_to_the_relay_endpoint() {
        assert_eq!(
            relay_url("https://app.example.com/").unwrap(),
            "wss://app.example.com/api/terminal/relay"
        );
        assert_eq!(
            relay_url("http://127.0.0.1:8000").unwrap(),
            "ws://127.0.0.1:8000/api/terminal/relay"
        );
        assert_eq!(
            relay_url("wss://x.io/api/terminal/relay").unwrap(),
            "wss://x.io/api/terminal/relay"
        );
        assert!(relay_url("ftp://x").is_err());
    }
}
