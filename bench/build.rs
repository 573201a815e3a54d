//! Compiles the baseline's empty service: the same request and reply messages
//! as `access.v1`, with handlers that do nothing.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "bench/v1/empty.proto";
    println!("cargo:rerun-if-changed=proto/{proto}");
    let fds = protox::compile([proto], ["proto", "../proto"])?;
    tonic_prost_build::configure()
        .extern_path(".access.v1", "::access_proto::v1")
        .compile_fds(fds)?;
    Ok(())
}
