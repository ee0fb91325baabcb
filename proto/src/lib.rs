//! mesh's wire API. Generated from `proto/`; the proxy converts these messages into
//! mesh-core's types once, at the edge, and never uses them on the data path.

/// Certificate signing, proxy -> citadel.
pub mod ca {
    pub mod v1 {
        tonic::include_proto!("mesh.ca.v1");
    }
}

/// Config discovery, pilot -> proxy.
pub mod discovery {
    pub mod v1 {
        tonic::include_proto!("mesh.discovery.v1");
    }
}

pub mod convert;
