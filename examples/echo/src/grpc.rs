//! gRPC mode, on the HTTP port: `mesh.echo.v1.Echo/Echo` answers who answered and what
//! metadata arrived, and honours the status, delay and fail-percent knobs as gRPC statuses,
//! so the proxy's gRPC routing and retries can be shown with the same app.
//!
//! Requests are told apart by `content-type: application/grpc*` over HTTP/2 (see
//! [`is_grpc`]); the rest go to the HTTP echo.

use std::sync::Arc;

use arc_swap::ArcSwap;
use http::{HeaderMap, Request, StatusCode, Version};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

use crate::config::Behaviour;
use crate::knobs::{self, RequestKnobs};
use crate::peer;
use crate::plan::{FailSchedule, Plan};
use crate::reply::{self, Identity};

/// The generated messages, client and server.
pub mod pb {
    tonic::include_proto!("mesh.echo.v1");
}

/// The generated server around this crate's implementation, as `http` serves it.
pub(crate) type GrpcService = pb::echo_server::EchoServer<GrpcEcho>;

/// Whether a request is a gRPC call: HTTP/2 with a gRPC content type (`application/grpc`,
/// `application/grpc+proto`, ...). gRPC over HTTP/1.1 does not exist; such requests get the
/// HTTP echo.
pub fn is_grpc<B>(request: &Request<B>) -> bool {
    request.version() == Version::HTTP_2
        && request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                value == "application/grpc"
                    || value.starts_with("application/grpc+")
                    || value.starts_with("application/grpc;")
            })
}

/// The Echo service; shares the knobs and the fail schedule with the HTTP echo.
pub(crate) struct GrpcEcho {
    pub identity: Identity,
    pub behaviour: Arc<ArcSwap<Behaviour>>,
    pub failures: Arc<FailSchedule>,
}

#[tonic::async_trait]
impl pb::echo_server::Echo for GrpcEcho {
    async fn echo(
        &self,
        request: tonic::Request<pb::EchoRequest>,
    ) -> Result<tonic::Response<pb::EchoReply>, Status> {
        let headers = request.metadata().clone().into_headers();
        let (knobs, grpc_code) = read_knobs(&headers).map_err(|error| self.status(error))?;
        // The guard is released before any await: arc-swap guards are meant to be short-lived.
        let plan = Plan::resolve(&knobs, None, &self.behaviour.load(), &self.failures);
        if !plan.delay.is_zero() {
            tokio::time::sleep(plan.delay).await;
        }
        if let Some(failure) = failure(plan.status, grpc_code) {
            return Err(self.status(failure));
        }
        let reply = pb::EchoReply {
            message: request.into_inner().message,
            service: self.identity.name.clone(),
            version: self.identity.version.clone(),
            hostname: self.identity.hostname.clone(),
            metadata: reply::headers(&headers),
            peer: peer::from_headers(&headers).unwrap_or_default(),
        };
        let mut response = tonic::Response::new(reply);
        self.identify(response.metadata_mut());
        Ok(response)
    }
}

impl GrpcEcho {
    /// A status carrying `x-echo-name` and `x-echo-version`, like every answer.
    fn status(&self, mut status: Status) -> Status {
        self.identify(status.metadata_mut());
        status
    }

    fn identify(&self, metadata: &mut MetadataMap) {
        for (name, value) in [
            (knobs::NAME_HEADER, &self.identity.name_header),
            (knobs::VERSION_HEADER, &self.identity.version_header),
        ] {
            if let Ok(value) = MetadataValue::try_from(value.as_bytes()) {
                metadata.insert(name, value);
            }
        }
    }
}

fn read_knobs(headers: &HeaderMap) -> Result<(RequestKnobs, Option<i32>), Status> {
    let invalid = |error: knobs::KnobError| Status::invalid_argument(error.to_string());
    let knobs = RequestKnobs::from_headers(headers).map_err(invalid)?;
    let grpc_code = knobs::grpc_status(headers).map_err(invalid)?;
    Ok((knobs, grpc_code))
}

/// The gRPC status a plan calls for, `None` for OK. A planned 503 (a fail-percent hit, or
/// asked for) is UNAVAILABLE whatever else was asked; then `x-echo-grpc-status`; then the
/// HTTP status, mapped as gRPC maps HTTP statuses from non-gRPC servers (any 2xx is OK).
pub fn failure(status: StatusCode, grpc_code: Option<i32>) -> Option<Status> {
    let code = if status == StatusCode::SERVICE_UNAVAILABLE {
        Code::Unavailable
    } else if let Some(code) = grpc_code {
        Code::from_i32(code)
    } else {
        code_for_http(status)
    };
    (code != Code::Ok).then(|| Status::new(code, format!("mesh-echo answered {code:?}")))
}

/// gRPC's table for an HTTP status from a server that is not gRPC (`doc/http-grpc-status-mapping.md`).
fn code_for_http(status: StatusCode) -> Code {
    match status.as_u16() {
        200..=299 => Code::Ok,
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(status: u16, grpc: Option<i32>) -> Code {
        let status = StatusCode::from_u16(status).expect("status");
        failure(status, grpc).map_or(Code::Ok, |s| s.code())
    }

    #[test]
    fn statuses_map_to_grpc_codes() {
        assert_eq!(code(200, None), Code::Ok);
        assert_eq!(code(204, None), Code::Ok);
        assert_eq!(code(503, None), Code::Unavailable);
        assert_eq!(code(504, None), Code::Unavailable);
        assert_eq!(code(404, None), Code::Unimplemented);
        assert_eq!(code(403, None), Code::PermissionDenied);
        assert_eq!(code(500, None), Code::Unknown);
        assert_eq!(code(200, Some(4)), Code::DeadlineExceeded);
        assert_eq!(
            code(500, Some(0)),
            Code::Ok,
            "the gRPC knob wins over HTTP's"
        );
        assert_eq!(code(503, Some(0)), Code::Unavailable, "a failure wins");
    }

    #[test]
    fn grpc_is_told_by_version_and_content_type() {
        let request = |version, content_type: &str| {
            Request::post("/mesh.echo.v1.Echo/Echo")
                .version(version)
                .header(http::header::CONTENT_TYPE, content_type)
                .body(())
                .expect("request")
        };
        assert!(is_grpc(&request(Version::HTTP_2, "application/grpc")));
        assert!(is_grpc(&request(Version::HTTP_2, "application/grpc+proto")));
        assert!(!is_grpc(&request(Version::HTTP_11, "application/grpc")));
        assert!(!is_grpc(&request(Version::HTTP_2, "application/json")));
        assert!(!is_grpc(&request(Version::HTTP_2, "application/grpcx")));
    }
}
