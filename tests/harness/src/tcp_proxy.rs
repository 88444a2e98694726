//! A TCP proxy the test can cut: pods pointed at it reach the real service until `cut()`,
//! then every connection is closed and new ones are refused (a dependency going away).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: SocketAddr,
    cut: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let (cut, cut_rx) = watch::channel(false);
        let cut_rx = Arc::new(cut_rx);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut rx = (*cut_rx).clone();
                if *rx.borrow() {
                    return;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = rx.changed() => {}
                    }
                });
            }
        });
        Self { addr, cut, task }
    }

    /// Closes every connection and stops accepting.
    pub fn cut(&self) {
        let _ = self.cut.send(true);
        self.task.abort();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}
