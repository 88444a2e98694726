//! The shell in a pseudo-terminal, with its blocking I/O on plain threads.

use std::io::{Read, Write};
use std::sync::mpsc as std_mpsc;

use anyhow::Context;
use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};
use tokio::sync::mpsc;

pub struct Shell {
    /// PTY output; closed when the shell exits.
    pub output: mpsc::Receiver<Vec<u8>>,
    input: std_mpsc::Sender<Vec<u8>>,
    master: Box<dyn MasterPty + Send>,
}

impl Shell {
    pub fn spawn(program: &str) -> anyhow::Result<Shell> {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 24,
                cols: 80,
                pixel_width: 0,
                pixel_height: 0,
            })
            .context("opening a PTY")?;
        let mut cmd = CommandBuilder::new(program);
        cmd.env("TERM", "xterm-256color");
        if let Ok(dir) = std::env::current_dir() {
            cmd.cwd(dir);
        }
        let mut child = pair
            .slave
            .spawn_command(cmd)
            .with_context(|| format!("starting {program}"))?;
        drop(pair.slave);

        let mut reader = pair.master.try_clone_reader().context("PTY reader")?;
        let mut writer = pair.master.take_writer().context("PTY writer")?;
        // Bounded: a stalled browser slows the shell instead of eating memory.
        let (out_tx, output) = mpsc::channel::<Vec<u8>>(256);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if out_tx.blocking_send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let (input, in_rx) = std_mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            while let Ok(bytes) = in_rx.recv() {
                if writer
                    .write_all(&bytes)
                    .and_then(|()| writer.flush())
                    .is_err()
                {
                    break;
                }
            }
        });
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        Ok(Shell {
            output,
            input,
            master: pair.master,
        })
    }

    pub fn write(&self, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.input.send(bytes).context("shell input closed")
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        let _ = self.master.resize(PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        });
    }
}
