//! gRPC through the proxy: a real tonic client and a real tonic server, HTTP/2 end to end,
//! trailers carried, faults answered with gRPC statuses and counted.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;

use mesh_proto::ca::v1::certificate_service_client::CertificateServiceClient;
use mesh_proto::ca::v1::certificate_service_server::{
    CertificateService, CertificateServiceServer,
};
use mesh_proto::ca::v1::{CertificateRequest, CertificateResponse};
use support::*;
use tonic::{Request, Response, Status};

const SERVICE: &str = "ca.mesh-system.svc.cluster.local";

/// A CA that echoes the CSR back, and refuses an empty one.
struct EchoCa;

#[tonic::async_trait]
impl CertificateService for EchoCa {
    async fn create_certificate(
        &self,
        request: Request<CertificateRequest>,
    ) -> Result<Response<CertificateResponse>, Status> {
        let request = request.into_inner();
        if request.csr.is_empty() {
            return Err(Status::invalid_argument("empty CSR"));
        }
        Ok(Response::new(CertificateResponse {
            cert_chain: vec![format!("signed:{}", request.csr)],
            trust_bundle: vec![],
        }))
    }
}

async fn grpc_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(CertificateServiceServer::new(EchoCa))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    addr
}

fn snapshot(upstream: SocketAddr) -> String {
    format!(
        r#"version: "1"
listeners:
- {{name: outbound, address: "127.0.0.1:0", routeConfig: outbound}}
routeConfigs:
- name: outbound
  virtualHosts:
  - name: ca
    domains: ["*"]
    routes:
    - name: faulty
      match: [{{headers: {{x-fault: {{exact: "yes"}}}}}}]
      fault: {{abort: {{grpcStatus: UNAVAILABLE, percentage: {{value: 100}}}}}}
      route: [{{destination: {{host: {SERVICE}}}}}]
    - name: ca
      route: [{{destination: {{host: {SERVICE}}}}}]
clusters:
- host: {SERVICE}
  port: 8060
  endpoints: [{{address: "{upstream}"}}]
"#
    )
}

#[tokio::test]
async fn a_tonic_client_reaches_a_tonic_server_through_the_proxy() {
    let upstream = grpc_server().await;
    let proxy = Proxy::start(&snapshot(upstream));
    let addr = proxy.listener("outbound").await;
    let mut client = CertificateServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();

    for i in 0..20 {
        let reply = client
            .create_certificate(CertificateRequest {
                csr: format!("csr-{i}"),
                validity_duration_seconds: 3600,
            })
            .await
            .unwrap();
        assert_eq!(reply.into_inner().cert_chain, [format!("signed:csr-{i}")]);
    }

    // A gRPC error travels in trailers: the client must see the server's status and message.
    let error = client
        .create_certificate(CertificateRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        (error.code(), error.message()),
        (tonic::Code::InvalidArgument, "empty CSR")
    );

    // A fault abort answers with a gRPC status, and the server never sees the call.
    let mut request = Request::new(CertificateRequest {
        csr: "x".into(),
        validity_duration_seconds: 1,
    });
    request
        .metadata_mut()
        .insert("x-fault", "yes".parse().unwrap());
    let error = client.create_certificate(request).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unavailable);

    let grpc_ok = [
        ("request_protocol", "grpc"),
        ("destination_service", SERVICE),
        ("response_code", "200"),
    ];
    assert_eq!(
        metric_value(&proxy, "mesh_requests_total", &grpc_ok).await,
        22.0,
        "20 ok, 1 error status, 1 fault: all HTTP 200"
    );
    let from_trailers = [("request_protocol", "grpc"), ("grpc_response_status", "3")];
    assert_eq!(
        metric_value(&proxy, "mesh_requests_total", &from_trailers).await,
        1.0,
        "the server's INVALID_ARGUMENT, read from the trailers"
    );
    let succeeded = [("request_protocol", "grpc"), ("grpc_response_status", "0")];
    assert_eq!(
        metric_value(&proxy, "mesh_requests_total", &succeeded).await,
        20.0
    );
    let faulted = [
        ("request_protocol", "grpc"),
        ("grpc_response_status", "14"),
        ("response_flags", "FI"),
    ];
    assert_eq!(
        metric_value(&proxy, "mesh_requests_total", &faulted).await,
        1.0
    );
}
