//! The command line as a library: the `microvm` binary's parser, also reached by the fuzz
//! harness (crates/fuzz-harness).

pub mod args;
mod clock;
pub mod firecracker;
pub mod jailer;
pub mod logger;
