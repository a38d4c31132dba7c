//! Library side of `cargo xtask`: guest images, the static microvm binary, the nested
//! rig and the scenario runner. The integration tests in xtask/tests use it directly.

pub mod bench_fio;
pub mod bench_io;
pub mod bench_netuser;
pub mod bench_qcow2;
pub mod bench_vhost;
pub mod binary;
pub mod cpio;
pub mod elf;
pub mod headline;
pub mod host;
pub mod images;
pub mod rig;
pub mod scenario;
