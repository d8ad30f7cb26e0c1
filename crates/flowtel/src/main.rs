//! The `flowtel` binary.

fn main() -> anyhow::Result<()> {
    Ok(())
}
