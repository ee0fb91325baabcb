//! A DNS server of the test's own (real UDP on loopback) for `resolution: DNS` clusters, and
//! echo apps on the addresses it names. Shared by the proxy's DNS tests and e2e's.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::A;
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;

pub const HOST: &str = "api.external.com";

/// A DNS server answering A queries for [`HOST`] with `answer` (TTL 1 s), or SERVFAIL
/// while `failing`.
pub struct DnsServer {
    pub addr: SocketAddr,
    answer: Arc<Mutex<Vec<Ipv4Addr>>>,
    pub failing: Arc<AtomicBool>,
    pub queries: Arc<AtomicUsize>,
}

impl DnsServer {
    pub async fn start(bind: &str, answer: Ipv4Addr) -> DnsServer {
        let socket = UdpSocket::bind(bind).await.unwrap();
        let server = DnsServer {
            addr: socket.local_addr().unwrap(),
            answer: Arc::new(Mutex::new(vec![answer])),
            failing: Arc::new(AtomicBool::new(false)),
            queries: Arc::new(AtomicUsize::new(0)),
        };
        let (answer, failing, queries) = (
            server.answer.clone(),
            server.failing.clone(),
            server.queries.clone(),
        );
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                queries.fetch_add(1, Ordering::Relaxed);
                let addresses = answer.lock().unwrap().clone();
                let reply = reply(&query, &addresses, failing.load(Ordering::Relaxed));
                let _ = socket.send_to(&reply.to_vec().unwrap(), peer).await;
            }
        });
        server
    }

    pub fn answer(&self, addresses: &[Ipv4Addr]) {
        *self.answer.lock().unwrap() = addresses.to_vec();
    }
}

fn reply(query: &Message, addresses: &[Ipv4Addr], failing: bool) -> Message {
    let code = if failing {
        ResponseCode::ServFail
    } else {
        ResponseCode::NoError
    };
    let mut reply = Message::error_msg(query.metadata.id, query.metadata.op_code, code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    reply.add_queries(query.queries.clone());
    for q in &query.queries {
        let ours = q.name().to_ascii().trim_end_matches('.') == HOST;
        if failing || !ours || q.query_type() != RecordType::A {
            continue;
        }
        for ip in addresses {
            let record = Record::from_rdata(q.name().clone(), 1, RData::A(A(*ip)));
            reply.add_answer(record);
        }
    }
    reply
}

/// An HTTP echo answering with `version` on `listen`.
pub async fn echo_on(listen: SocketAddr, version: &str) -> mesh_echo::EchoServer {
    mesh_echo::start(mesh_echo::EchoConfig {
        version: version.to_owned(),
        listen,
        ..mesh_echo::EchoConfig::default()
    })
    .await
    .unwrap()
}
