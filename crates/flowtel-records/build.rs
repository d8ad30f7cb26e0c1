//! Compiles `proto/flowtel/flow/v1/flow.proto` with protox (a .proto compiler in Rust, so no
//! system `protoc` is needed) and prost-build; also keeps the compiled descriptor set, which
//! the schema test reads to pin every field's number and type.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let file = "flowtel/flow/v1/flow.proto";
    println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    let descriptors = protox::compile([file], [&proto_root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("flow_descriptor_set.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
