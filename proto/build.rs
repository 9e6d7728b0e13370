//! Compiles the `.proto` files with protox (a Rust protobuf compiler: no system `protoc` is
//! needed) and generates the prost messages and tonic clients/servers from the descriptors.

const PROTOS: [&str; 2] = ["temper/reward/v1/reward.proto", "temper/tool/v1/tool.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["."])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
