//! Loopback network pieces the security and fault tests stand up themselves: a TCP
//! balancer in front of several replicas (the ingress), and a scripted DNS server.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// Round-robin TCP balancer on 127.0.0.1: each accepted connection goes to the next
/// backend that accepts a connection (a dead replica is skipped, as an ingress's
/// health checks would), then bytes are copied both ways until either side closes.
pub struct Balancer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Balancer {
    pub async fn start(backends: Vec<SocketAddr>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind balancer");
        let addr = listener.local_addr().expect("addr");
        let backends = Arc::new(backends);
        let next = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (backends, next) = (backends.clone(), next.clone());
                tokio::spawn(async move {
                    let start = next.fetch_add(1, Ordering::Relaxed);
                    for i in 0..backends.len() {
                        let backend = backends[(start + i) % backends.len()];
                        if let Ok(mut upstream) = TcpStream::connect(backend).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                            return;
                        }
                    }
                });
            }
        });
        Balancer { addr, task }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A DNS server on 127.0.0.1 (UDP) answering A queries from a script: the n-th A
/// query for any name gets `answers[n]` (the last one repeats); AAAA queries get no
/// records. It counts the A queries, so a test can prove a name was resolved once.
/// Message layout from RFC 1035 §4.1.
pub struct ScriptedDns {
    pub addr: SocketAddr,
    queries: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl ScriptedDns {
    pub async fn start(answers: Vec<IpAddr>) -> ScriptedDns {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind dns");
        let addr = socket.local_addr().expect("addr");
        let queries: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = queries.clone();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let mut a_queries = 0usize;
            while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
                let Some((name, qtype, question_end)) = parse_question(&buf[..n]) else {
                    continue;
                };
                let answer = if qtype == 1 {
                    log.lock().unwrap().push(name);
                    let ip = answers[a_queries.min(answers.len() - 1)];
                    a_queries += 1;
                    match ip {
                        IpAddr::V4(v4) => Some(v4.octets()),
                        IpAddr::V6(_) => None,
                    }
                } else {
                    None
                };
                let mut reply = Vec::with_capacity(question_end + 16);
                reply.extend_from_slice(&buf[..2]); // id
                reply.extend_from_slice(&[0x81, 0x80]); // response, RD, RA, NOERROR
                reply.extend_from_slice(&[0, 1, 0, answer.is_some() as u8, 0, 0, 0, 0]);
                reply.extend_from_slice(&buf[12..question_end]);
                if let Some(octets) = answer {
                    // Name: pointer to the question (offset 12); A, IN, TTL 0, 4 bytes.
                    reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4]);
                    reply.extend_from_slice(&octets);
                }
                let _ = socket.send_to(&reply, peer).await;
            }
        });
        ScriptedDns {
            addr,
            queries,
            task,
        }
    }

    /// Names asked for with A queries, in order.
    pub fn a_queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }
}

impl Drop for ScriptedDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// (name, qtype, offset after the question) of a one-question query.
fn parse_question(msg: &[u8]) -> Option<(String, u16, usize)> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = *msg.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(msg.get(at..at + len)?).to_string());
        at += len;
    }
    let qtype = u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]);
    Some((labels.join("."), qtype, at + 4))
}
