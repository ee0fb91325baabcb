//! A discovery server on loopback that a test drives: it pushes responses, reads the
//! proxy's requests, and stops and starts again on the same port.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use mesh_proto::discovery::v1 as pb;
use pb::discovery_server::{Discovery, DiscoveryServer};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::support::DEADLINE;

/// A request the fake pilot received, and on which stream (1 for the first).
#[derive(Debug)]
pub struct Seen {
    pub stream: usize,
    pub request: pb::DiscoveryRequest,
}

type Responses = mpsc::UnboundedSender<Result<pb::DiscoveryResponse, Status>>;

/// What the server's streams share with the test, across restarts.
struct Shared {
    /// The response side of the newest stream.
    current: Mutex<Option<Responses>>,
    streams: Mutex<usize>,
    seen: mpsc::UnboundedSender<Seen>,
}

#[derive(Clone)]
struct Service(Arc<Shared>);

#[tonic::async_trait]
impl Discovery for Service {
    type StreamStream = UnboundedReceiverStream<Result<pb::DiscoveryResponse, Status>>;

    async fn stream(
        &self,
        request: Request<Streaming<pb::DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let stream = {
            let mut streams = self.0.streams.lock().unwrap();
            *streams += 1;
            *streams
        };
        let (responses, outgoing) = mpsc::unbounded_channel();
        *self.0.current.lock().unwrap() = Some(responses);
        let mut incoming = request.into_inner();
        let seen = self.0.seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(request)) = incoming.message().await {
                let _ = seen.send(Seen { stream, request });
            }
        });
        Ok(Response::new(UnboundedReceiverStream::new(outgoing)))
    }
}

/// A discovery server on loopback that the test drives: push responses, read requests,
/// stop it and start it again on the same port.
pub struct FakePilot {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    seen: mpsc::UnboundedReceiver<Seen>,
    running: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
}

impl FakePilot {
    pub async fn start() -> FakePilot {
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            current: Mutex::new(None),
            streams: Mutex::new(0),
            seen: seen_tx,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut pilot = FakePilot {
            addr: listener.local_addr().unwrap(),
            shared,
            seen,
            running: None,
        };
        pilot.serve(listener);
        pilot
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (stop, stopped) = oneshot::channel::<()>();
        let service = DiscoveryServer::new(Service(self.shared.clone()));
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await
                .unwrap();
        });
        self.running = Some((stop, server));
    }

    /// Ends the open stream and closes the port.
    pub async fn stop(&mut self) {
        let (stop, server) = self.running.take().expect("running");
        let _ = stop.send(());
        self.shared.current.lock().unwrap().take();
        let abort = server.abort_handle();
        if tokio::time::timeout(DEADLINE, server).await.is_err() {
            abort.abort();
        }
    }

    /// Serves again on the same port.
    pub async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    pub fn push(&self, response: pb::DiscoveryResponse) {
        let current = self.shared.current.lock().unwrap();
        let sender = current.as_ref().expect("no stream open to push on");
        sender.send(Ok(response)).unwrap();
    }

    pub async fn next_request(&mut self) -> Seen {
        tokio::time::timeout(DEADLINE, self.seen.recv())
            .await
            .expect("no request from the proxy in time")
            .expect("request channel closed")
    }

    /// Pushes `response` and returns the proxy's answer to it.
    pub async fn push_and_answer(
        &mut self,
        response: pb::DiscoveryResponse,
    ) -> pb::DiscoveryRequest {
        let nonce = response.nonce.clone();
        self.push(response);
        let answer = self.next_request().await.request;
        assert_eq!(answer.response_nonce, nonce, "answers the push: {answer:?}");
        answer
    }
}
