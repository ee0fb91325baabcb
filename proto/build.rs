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
    tonic_prost_build::Config::new()
}
