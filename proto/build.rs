//! Compiles `access/v1/*.proto` with protox, a pure-Rust protobuf compiler, so a
//! fresh machine needs no system `protoc`, and keeps the descriptor set for
//! gRPC server reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["access/v1/access.proto", "access/v1/events.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let mut compiler = protox::Compiler::new(["."])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(protos)?;
    // Encoded by protox itself: prost's descriptor types would drop the
    // custom options (the request limits) the codec reads back.
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("access_v1_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    let fds = compiler.file_descriptor_set();
    // Type names let the codec find each request's limits in the descriptors.
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .codec_path("crate::codec::BoundedCodec")
        .compile_fds_with_config(fds, config)?;
    Ok(())
}
