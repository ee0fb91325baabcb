//! The discovery service on the wire. Every resource is encoded once per generation and the
//! same bytes go to every proxy that needs it: responses are written from those bytes
//! (a `repeated Resource` field is a run of length-delimited messages, so pre-encoded
//! resources are written as they are), not re-encoded from cloned messages per proxy.
//! A large update goes out in pieces of about [`PIECE_BYTES`], so no stream's buffer ever
//! grows to the size of a whole mesh's config.

use std::convert::Infallible;
use std::ops::Deref;
use std::sync::Arc;

use bytes::{BufMut, Bytes};
use mesh_proto::convert::ResourceKey;
use mesh_proto::discovery::v1 as pb;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, Context, Poll, Service, StdError, http};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};

use super::server::DiscoveryService;

/// Target size of one response piece: what each stream's encode buffer grows to (tonic
/// keeps it for the stream's life), so small.
pub const PIECE_BYTES: usize = 16 * 1024;

/// Route configs of large meshes exceed tonic's 4 MiB default.
const MAX_MESSAGE: usize = 64 << 20;

/// A resource and its encoding, shared by every proxy that holds it.
#[derive(Debug)]
pub struct Encoded {
    pub resource: pb::Resource,
    pub bytes: Bytes,
}

impl Encoded {
    pub fn new(resource: pb::Resource) -> Self {
        let bytes = resource.encode_to_vec().into();
        Self { resource, bytes }
    }
}

impl Deref for Encoded {
    type Target = pb::Resource;

    fn deref(&self) -> &pb::Resource {
        &self.resource
    }
}

/// A `DiscoveryResponse` whose resources are already encoded.
pub struct WireResponse {
    pub version: String,
    pub nonce: String,
    pub resources: Vec<Arc<Encoded>>,
    pub removed: Vec<ResourceKey>,
    pub more: bool,
}

impl WireResponse {
    /// Writes the message as `pb::DiscoveryResponse` would encode it.
    pub fn encode(&self, buf: &mut impl BufMut) {
        prost::encoding::string::encode(1, &self.version, buf);
        prost::encoding::string::encode(2, &self.nonce, buf);
        for resource in &self.resources {
            encode_key(3, WireType::LengthDelimited, buf);
            encode_varint(resource.bytes.len() as u64, buf);
            buf.put_slice(&resource.bytes);
        }
        for (kind, name) in &self.removed {
            let key = pb::ResourceKey {
                r#type: *kind as i32,
                name: name.clone(),
            };
            prost::encoding::message::encode(4, &key, buf);
        }
        if self.more {
            prost::encoding::bool::encode(5, &true, buf);
        }
    }

    /// Splits an update into pieces of about [`PIECE_BYTES`]; removals go in the last.
    pub fn pieces(
        version: &str,
        nonce: &str,
        resources: &[Arc<Encoded>],
        removed: Vec<ResourceKey>,
    ) -> Vec<WireResponse> {
        let mut pieces = Vec::new();
        let mut current: Vec<Arc<Encoded>> = Vec::new();
        let mut size = 0;
        for resource in resources {
            if size > 0 && size + resource.bytes.len() > PIECE_BYTES {
                pieces.push(std::mem::take(&mut current));
                size = 0;
            }
            size += resource.bytes.len();
            current.push(resource.clone());
        }
        pieces.push(current);
        let last = pieces.len() - 1;
        let mut removed = Some(removed);
        pieces
            .into_iter()
            .enumerate()
            .map(|(i, resources)| WireResponse {
                version: version.to_owned(),
                nonce: nonce.to_owned(),
                resources,
                removed: if i == last {
                    removed.take().unwrap_or_default()
                } else {
                    Vec::new()
                },
                more: i != last,
            })
            .collect()
    }
}

#[derive(Clone, Copy, Default)]
pub struct WireCodec;

pub struct WireEncoder;

impl Encoder for WireEncoder {
    type Item = WireResponse;
    type Error = Status;

    fn encode(&mut self, item: WireResponse, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst);
        Ok(())
    }
}

pub struct RequestDecoder;

impl Decoder for RequestDecoder {
    type Item = pb::DiscoveryRequest;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        pb::DiscoveryRequest::decode(src)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("malformed request: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

impl Codec for WireCodec {
    type Encode = WireResponse;
    type Decode = pb::DiscoveryRequest;
    type Encoder = WireEncoder;
    type Decoder = RequestDecoder;

    fn encoder(&mut self) -> WireEncoder {
        WireEncoder
    }

    fn decoder(&mut self) -> RequestDecoder {
        RequestDecoder
    }
}

/// `mesh.discovery.v1.Discovery`, served with [`WireCodec`].
#[derive(Clone)]
pub struct DiscoveryServer(pub Arc<DiscoveryService>);

impl NamedService for DiscoveryServer {
    const NAME: &'static str = "mesh.discovery.v1.Discovery";
}

struct StreamMethod(Arc<DiscoveryService>);

impl StreamingService<pb::DiscoveryRequest> for StreamMethod {
    type Response = WireResponse;
    type ResponseStream = ReceiverStream<Result<WireResponse, Status>>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<pb::DiscoveryRequest>>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { service.open(request).await })
    }
}

impl<B> Service<http::Request<B>> for DiscoveryServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != "/mesh.discovery.v1.Discovery/Stream" {
            return Box::pin(async { Ok(Status::unimplemented("").into_http()) });
        }
        let method = StreamMethod(self.0.clone());
        Box::pin(async move {
            let mut grpc = Grpc::new(WireCodec)
                .apply_max_message_size_config(Some(MAX_MESSAGE), Some(MAX_MESSAGE));
            Ok(grpc.streaming(method, request).await)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(name: &str, size: usize) -> Arc<Encoded> {
        Arc::new(Encoded::new(mesh_proto::convert::resource(
            name.into(),
            pb::resource::Kind::VirtualHost(pb::VirtualHost {
                name: name.into(),
                routes_json: "x".repeat(size),
                ..Default::default()
            }),
        )))
    }

    #[test]
    fn a_wire_response_decodes_as_the_message_it_stands_for() {
        let resources = vec![encoded("a", 10), encoded("b", 20)];
        let wire = WireResponse {
            version: "v1".into(),
            nonce: "7".into(),
            resources: resources.clone(),
            removed: vec![(pb::ResourceType::Cluster, "gone".into())],
            more: true,
        };
        let mut bytes = Vec::new();
        wire.encode(&mut bytes);
        let decoded = pb::DiscoveryResponse::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(
            decoded,
            pb::DiscoveryResponse {
                system_version_info: "v1".into(),
                nonce: "7".into(),
                resources: resources.iter().map(|r| r.resource.clone()).collect(),
                removed_resources: vec![pb::ResourceKey {
                    r#type: pb::ResourceType::Cluster as i32,
                    name: "gone".into(),
                }],
                more: true,
            }
        );
    }

    #[test]
    fn a_large_update_goes_in_pieces_with_removals_in_the_last() {
        let resources: Vec<_> = (0..10)
            .map(|i| encoded(&format!("r{i}"), PIECE_BYTES / 4))
            .collect();
        let removed = vec![(pb::ResourceType::Cluster, "gone".into())];
        let pieces = WireResponse::pieces("v", "1", &resources, removed);
        assert!(pieces.len() >= 3, "{} pieces", pieces.len());
        let sent: usize = pieces.iter().map(|p| p.resources.len()).sum();
        assert_eq!(sent, 10);
        for piece in &pieces[..pieces.len() - 1] {
            assert!(piece.more && piece.removed.is_empty());
            let size: usize = piece.resources.iter().map(|r| r.bytes.len()).sum();
            assert!(size <= PIECE_BYTES, "{size}");
        }
        let last = pieces.last().expect("a last piece");
        assert!(!last.more);
        assert_eq!(last.removed.len(), 1);

        let small = WireResponse::pieces("v", "1", &[], Vec::new());
        assert_eq!(small.len(), 1, "an empty update is one response");
        assert!(!small[0].more);
    }
}
