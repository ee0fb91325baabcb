//! A real OTLP/gRPC trace receiver: opentelemetry-proto's TraceService served by tonic on
//! loopback, keeping every span it is sent.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use tonic::{Request, Response, Status};

use super::support::DEADLINE;

/// A span as received, with its resource's `service.name` and its string attributes.
#[derive(Debug, Clone)]
pub struct Received {
    pub service: String,
    pub span: Span,
    pub tags: BTreeMap<String, String>,
}

impl Received {
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    pub fn parent_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    pub fn tag(&self, key: &str) -> &str {
        self.tags.get(key).map_or("<missing>", String::as_str)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let attributes = resource.resource.map(|r| r.attributes).unwrap_or_default();
            let service = strings(&attributes)
                .remove("service.name")
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for span in scope.spans {
                    spans.push(Received {
                        service: service.clone(),
                        tags: strings(&span.attributes),
                        span,
                    });
                }
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

fn strings(
    attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
) -> BTreeMap<String, String> {
    attributes
        .iter()
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some((kv.key.clone(), s.clone())),
            _ => None,
        })
        .collect()
}

pub struct Collector {
    pub addr: SocketAddr,
    receiver: Receiver,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Collector {
    pub async fn start() -> Collector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let receiver = Receiver::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let service = TraceServiceServer::new(receiver.clone());
        tokio::spawn(async move {
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
        Collector {
            addr,
            receiver,
            _stop: stop,
        }
    }

    pub fn spans(&self) -> Vec<Received> {
        self.receiver.spans.lock().unwrap().clone()
    }

    /// Waits until at least `count` spans of trace `trace_id` have arrived.
    pub async fn trace(&self, trace_id: &str, count: usize) -> Vec<Received> {
        self.wait(|s| s.trace_id() == trace_id, count).await
    }

    pub async fn wait(&self, matching: impl Fn(&Received) -> bool, count: usize) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let found: Vec<Received> = self.spans().into_iter().filter(&matching).collect();
            if found.len() >= count {
                return found;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{} of {count} spans arrived: {found:#?}",
                found.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
