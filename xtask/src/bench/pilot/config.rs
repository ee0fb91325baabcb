//! The generated mesh: services spread over namespaces, each with inline endpoints, a
//! DestinationRule with two subsets and a VirtualService, one file per service so that a
//! change rewrites one small file, atomically (write aside, rename), as editors and
//! `kubectl cp` do.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use mesh_proto::discovery::v1::ResourceType;

/// The one HTTP port every service has.
pub const PORT: u16 = 8080;

/// How big the generated mesh is.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub services: usize,
    pub endpoints: usize,
    pub namespaces: usize,
}

/// What a service's file says beyond the base one: the scenarios' edits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Variant {
    /// Route weight moved from subset v1 to v2 (the base split is 90/10), in percent.
    pub shift: u32,
    /// How many times endpoint 0 has moved to a new address.
    pub moves: u32,
}

/// The resource a change should send: `(type, name)` as the discovery protocol names it.
pub type Key = (i32, String);

impl Shape {
    pub fn namespace(&self, service: usize) -> String {
        format!("ns-{}", service % self.namespaces.max(1))
    }

    pub fn host(&self, service: usize) -> String {
        format!(
            "svc-{service}.{}.svc.cluster.local",
            self.namespace(service)
        )
    }

    pub fn file_name(service: usize) -> String {
        format!("svc-{service:05}.yaml")
    }

    /// The resource a route change to `service` sends: its virtual host.
    pub fn virtual_host_key(&self, service: usize) -> Key {
        let name = format!("outbound/{}:{PORT}", self.host(service));
        (ResourceType::VirtualHost as i32, name)
    }

    /// The resource an endpoint change of `service` sends: its endpoints.
    pub fn endpoints_key(&self, service: usize) -> Key {
        let name = mesh_proto::convert::cluster_name(&self.host(service), PORT);
        (ResourceType::Endpoints as i32, name)
    }

    /// The whole file of one service: ServiceEntry, DestinationRule, VirtualService.
    pub fn service_yaml(&self, service: usize, variant: Variant) -> String {
        [
            self.service_entry(service, variant),
            self.destination_rule(service),
            self.virtual_service(service, variant),
        ]
        .join("---\n")
    }

    fn metadata(&self, service: usize) -> String {
        format!(
            "metadata: {{name: svc-{service}, namespace: {}}}\n",
            self.namespace(service)
        )
    }

    fn service_entry(&self, service: usize, variant: Variant) -> String {
        let mut text = format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n{}spec:\n  \
             hosts: [{}]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  \
             ports: [{{number: {PORT}, name: http, protocol: HTTP}}]\n  endpoints:\n",
            self.metadata(service),
            self.host(service)
        );
        for endpoint in 0..self.endpoints {
            let moves = if endpoint == 0 { variant.moves } else { 0 };
            let address = endpoint_address(self.endpoints, service, endpoint, moves);
            let version = if endpoint % 2 == 0 { "v1" } else { "v2" };
            text.push_str(&format!(
                "  - {{address: {address}, ports: {{http: {PORT}}}, \
                 labels: {{app: svc-{service}, version: {version}}}}}\n"
            ));
        }
        text
    }

    fn destination_rule(&self, service: usize) -> String {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n{}spec:\n  \
             host: {}\n  subsets:\n  - {{name: v1, labels: {{version: v1}}}}\n  \
             - {{name: v2, labels: {{version: v2}}}}\n",
            self.metadata(service),
            self.host(service)
        )
    }

    fn virtual_service(&self, service: usize, variant: Variant) -> String {
        let host = self.host(service);
        let (v1, v2) = weights(variant.shift);
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\n{}spec:\n  \
             hosts: [{host}]\n  http:\n  - route:\n    \
             - {{destination: {{host: {host}, subset: v1}}, weight: {v1}}}\n    \
             - {{destination: {{host: {host}, subset: v2}}, weight: {v2}}}\n",
            self.metadata(service)
        )
    }
}

/// The v1/v2 split after moving `shift` percent to v2; always adds up to 100, and every
/// shift up to 80 gives a different split.
pub fn weights(shift: u32) -> (u32, u32) {
    let v2 = 10 + shift % 81;
    (100 - v2, v2)
}

/// A distinct 10.x.y.z for every endpoint; a moved endpoint 0 goes to 10.128.0.0/9, which
/// the base addresses (below 2^23) never reach.
pub fn endpoint_address(
    per_service: usize,
    service: usize,
    endpoint: usize,
    moves: u32,
) -> Ipv4Addr {
    let n = if moves == 0 {
        (service * per_service + endpoint + 1) as u32
    } else {
        (1 << 23) | ((moves & 0x7f) << 16) | (service as u32 & 0xffff)
    };
    Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8)
}

/// The config directory on disk and the edits made to it.
pub struct ConfigDir {
    pub path: PathBuf,
    pub shape: Shape,
    variants: HashMap<usize, Variant>,
}

impl ConfigDir {
    /// Writes every service's file into `path`; returns the directory and its size in bytes.
    pub fn generate(path: &Path, shape: Shape) -> anyhow::Result<(Self, u64)> {
        let mut bytes = 0;
        for service in 0..shape.services {
            let text = shape.service_yaml(service, Variant::default());
            bytes += text.len() as u64;
            let file = path.join(Shape::file_name(service));
            std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
        }
        let dir = ConfigDir {
            path: path.to_path_buf(),
            shape,
            variants: HashMap::new(),
        };
        Ok((dir, bytes))
    }

    /// Moves route weight of `service` to v2; returns the resource that should change.
    pub fn change_route(&mut self, service: usize) -> anyhow::Result<Key> {
        self.edit(service, |v| v.shift += 1)?;
        Ok(self.shape.virtual_host_key(service))
    }

    /// Moves endpoint 0 of `service` to a new address; returns the resource that should
    /// change.
    pub fn move_endpoint(&mut self, service: usize) -> anyhow::Result<Key> {
        self.edit(service, |v| v.moves += 1)?;
        Ok(self.shape.endpoints_key(service))
    }

    fn edit(&mut self, service: usize, change: impl FnOnce(&mut Variant)) -> anyhow::Result<()> {
        let variant = self.variants.entry(service).or_default();
        change(variant);
        let text = self.shape.service_yaml(service, *variant);
        write_atomically(&self.path.join(Shape::file_name(service)), &text)
    }
}

/// Writes beside the file (a name the loader ignores), then renames over it.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let aside = path.with_extension("tmp~");
    std::fs::write(&aside, text).with_context(|| format!("writing {}", aside.display()))?;
    std::fs::rename(&aside, path).with_context(|| format!("renaming onto {}", path.display()))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
