//! Compiles the gRPC API without a protoc binary: protox parses the .proto files into a
//! descriptor set, which tonic-prost-build turns into Rust and which the server embeds for
//! gRPC reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/microscoped/v1/microscope.proto",
        "proto/microscoped/v1/acquisition.proto",
        "proto/microscoped/v1/access.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("microscoped_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
