//! What a simulated proxy decodes of pilot's responses: each resource's type, name and
//! version, with the body skipped. Thousands of proxies share this machine with pilot;
//! decoding every route's JSON for each of them would take more CPU than pilot itself
//! (a real proxy decodes on its own machine), so it would be the client we measured.

use mesh_proto::discovery::v1 as pb;
use prost::Message;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Status, Streaming};

/// `DiscoveryResponse` with its resources' bodies left undecoded.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Response {
    #[prost(string, tag = "1")]
    pub system_version_info: String,
    #[prost(string, tag = "2")]
    pub nonce: String,
    #[prost(message, repeated, tag = "3")]
    pub resources: Vec<ResourceHead>,
    #[prost(message, repeated, tag = "4")]
    pub removed_resources: Vec<pb::ResourceKey>,
    /// More pieces of the same update follow.
    #[prost(bool, tag = "5")]
    pub more: bool,
}

/// `Resource` without its body: the oneof's tag still says the type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceHead {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(oneof = "Body", tags = "3, 4, 5, 6, 7, 8")]
    pub body: Option<Body>,
}

/// `Resource.kind`, each variant a message whose fields are all skipped.
#[derive(Clone, Copy, PartialEq, prost::Oneof)]
pub enum Body {
    #[prost(message, tag = "3")]
    Listener(Skipped),
    #[prost(message, tag = "4")]
    RouteConfiguration(Skipped),
    #[prost(message, tag = "5")]
    Cluster(Skipped),
    #[prost(message, tag = "6")]
    Endpoints(Skipped),
    #[prost(message, tag = "7")]
    InboundPolicy(Skipped),
    #[prost(message, tag = "8")]
    VirtualHost(Skipped),
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Skipped {}

impl ResourceHead {
    pub fn resource_type(&self) -> pb::ResourceType {
        match self.body {
            None => pb::ResourceType::Unspecified,
            Some(Body::Listener(_)) => pb::ResourceType::Listener,
            Some(Body::RouteConfiguration(_)) => pb::ResourceType::RouteConfiguration,
            Some(Body::Cluster(_)) => pb::ResourceType::Cluster,
            Some(Body::Endpoints(_)) => pb::ResourceType::Endpoints,
            Some(Body::InboundPolicy(_)) => pb::ResourceType::InboundPolicy,
            Some(Body::VirtualHost(_)) => pb::ResourceType::VirtualHost,
        }
    }
}

/// Opens `mesh.discovery.v1.Discovery/Stream`; each response comes with its encoded size.
pub async fn open(
    channel: Channel,
    requests: ReceiverStream<pb::DiscoveryRequest>,
) -> Result<Streaming<(usize, Response)>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(1 << 30);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("connecting: {e}")))?;
    let path = http::uri::PathAndQuery::from_static("/mesh.discovery.v1.Discovery/Stream");
    let response = grpc
        .streaming(tonic::Request::new(requests), path, LightCodec)
        .await?;
    Ok(response.into_inner())
}

/// Full requests out, light responses (with their size) in.
pub struct LightCodec;

impl Codec for LightCodec {
    type Encode = pb::DiscoveryRequest;
    type Decode = (usize, Response);
    type Encoder = LightCodec;
    type Decoder = LightCodec;

    fn encoder(&mut self) -> Self::Encoder {
        LightCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        LightCodec
    }
}

impl Encoder for LightCodec {
    type Item = pb::DiscoveryRequest;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding a request: {e}")))
    }
}

impl Decoder for LightCodec {
    type Item = (usize, Response);
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        let size = bytes::Buf::remaining(src);
        let response = Response::decode(src)
            .map_err(|e| Status::internal(format!("decoding a response: {e}")))?;
        Ok(Some((size, response)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_light_response_reads_what_the_full_one_says() {
        let endpoints = mesh_proto::convert::resource(
            "outbound|8080||svc-1.ns-1.svc.cluster.local".into(),
            pb::resource::Kind::Endpoints(pb::ClusterEndpoints {
                endpoints: vec![pb::Endpoint {
                    address: "10.0.0.11:8080".into(),
                    ..Default::default()
                }],
            }),
        );
        let cluster = pb::Resource {
            kind: Some(pb::resource::Kind::Cluster(pb::Cluster::default())),
            ..endpoints.clone()
        };
        let full = pb::DiscoveryResponse {
            system_version_info: "v7".into(),
            nonce: "42".into(),
            resources: vec![endpoints.clone(), cluster],
            removed_resources: vec![pb::ResourceKey {
                r#type: pb::ResourceType::VirtualHost as i32,
                name: "gone".into(),
            }],
            more: true,
        };
        let light = Response::decode(full.encode_to_vec().as_slice()).unwrap();
        assert_eq!(light.nonce, "42");
        assert_eq!(light.system_version_info, "v7");
        assert!(light.more);
        let heads: Vec<_> = light
            .resources
            .iter()
            .map(|r| (r.resource_type(), r.name.as_str(), r.version.as_str()))
            .collect();
        assert_eq!(
            heads,
            [
                (
                    pb::ResourceType::Endpoints,
                    endpoints.name.as_str(),
                    endpoints.version.as_str()
                ),
                (
                    pb::ResourceType::Cluster,
                    endpoints.name.as_str(),
                    endpoints.version.as_str()
                ),
            ]
        );
        assert!(!endpoints.version.is_empty());
        assert_eq!(light.removed_resources, full.removed_resources);
    }
}
