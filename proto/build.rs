//! Generates the gRPC code with a vendored protoc, so a fresh machine needs only cargo.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/mesh/ca/v1/ca.proto",
        "proto/mesh/discovery/v1/discovery.proto",
    ];
    for proto in &protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let mut config = prost_build_config();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(config, &protos, &["proto"])?;
    Ok(())
}

fn prost_build_config() -> tonic_prost_build::Config {
    let mut config = tonic_prost_build::Config::new();
    // Ordered maps encode the same bytes in every process, so content versions (digests of
    // the encoding) agree across pilot replicas and restarts.
    config.btree_map(["."]);
    config
}
