use super::super::test_util::*;
use vmm::config::{MemoryBackend, MemoryConfig};

fn memory(extra: &[&str]) -> (u64, MemoryConfig) {
    let vm = run(extra).unwrap_or_else(|e| panic!("{extra:?}: {e}"));
    (vm.mem_size, vm.memory)
}

const MEMFD: MemoryBackend = MemoryBackend::Memfd { hugetlb: false, hugepage_size: None };

#[test]
fn default_is_anonymous_private_memory() {
    assert_eq!(memory(&["-m", "256M"]), (256 * MIB, MemoryConfig::default()));
}

#[test]
fn memfd_backend_selected_by_machine_is_shared_by_default() {
    let got =
        memory(&["-m", "512M", "-object", "memory-backend-memfd,id=mem,size=512M", "-M", "microvm,memory-backend=mem"]);
    assert_eq!(got, (512 * MIB, MemoryConfig { backend: MEMFD, shared: true, prealloc: false }));
}

#[test]
fn numa_memdev_selects_the_backend_and_sets_the_size_without_m() {
    let got = memory(&["-object", "memory-backend-memfd,id=m,size=1G,share=off,prealloc=on", "-numa", "node,memdev=m"]);
    assert_eq!(got, (GIB, MemoryConfig { backend: MEMFD, shared: false, prealloc: true }));
}

#[test]
fn hugetlb_memfd_keeps_its_page_size() {
    let (_, config) = memory(&[
        "-object",
        "memory-backend-memfd,id=m,size=128M,hugetlb=on,hugetlbsize=2M",
        "-machine",
        "memory-backend=m",
    ]);
    assert_eq!(config.backend, MemoryBackend::Memfd { hugetlb: true, hugepage_size: Some(2 * MIB) });
}

#[test]
fn file_backend_needs_mem_path_and_defaults_to_private() {
    let (_, config) =
        memory(&["-object", "memory-backend-file,id=f,size=128M,mem-path=/dev/shm", "-numa", "node,memdev=f"]);
    assert_eq!(
        config,
        MemoryConfig { backend: MemoryBackend::File { path: "/dev/shm".into() }, shared: false, prealloc: false }
    );
    assert_invalid(err(&["-object", "memory-backend-file,id=f,size=128M"]), "-object", "mem-path= is required");
}

#[test]
fn ram_backend_and_legacy_options() {
    let (_, config) =
        memory(&["-object", "memory-backend-ram,id=r,size=128M", "-M", "memory-backend=r", "-mem-prealloc"]);
    assert_eq!(config, MemoryConfig { backend: MemoryBackend::Anonymous, shared: false, prealloc: true });
    let (size, config) = memory(&["-m", "64M", "-mem-path", "/dev/hugepages"]);
    assert_eq!(size, 64 * MIB);
    assert_eq!(config.backend, MemoryBackend::File { path: "/dev/hugepages".into() });
}

#[test]
fn a_size_that_is_not_m_is_one_clear_error() {
    let e = err(&["-m", "512M", "-object", "memory-backend-memfd,id=m,size=256M", "-M", "memory-backend=m"]);
    assert_invalid(e.clone(), "-object", "size (256 MiB) must equal -m (512 MiB)");
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn a_second_numa_node_is_refused() {
    let e = err(&[
        "-object",
        "memory-backend-memfd,id=a,size=64M",
        "-object",
        "memory-backend-memfd,id=b,size=64M",
        "-numa",
        "node,memdev=a",
        "-numa",
        "node,memdev=b",
    ]);
    assert_invalid(e, "-numa", "one NUMA node");
    assert_invalid(err(&["-numa", "node,nodeid=1,memdev=a"]), "-numa", "only nodeid=0");
    assert_invalid(err(&["-numa", "dist,src=0,dst=0,val=10"]), "-numa", "unknown property");
}

#[test]
fn bad_references_and_values() {
    assert_invalid(err(&["-M", "memory-backend=nope"]), "-machine", "no -object memory-backend-* has this id");
    assert_invalid(err(&["-object", "memory-backend-memfd,id=m"]), "-object", "size= is required");
    assert_invalid(err(&["-object", "memory-backend-memfd,size=64M"]), "-object", "id= is required");
    assert_invalid(
        err(&["-object", "memory-backend-memfd,id=m,size=64M,hugetlbsize=3M,hugetlb=on"]),
        "-object",
        "power-of-two",
    );
    assert_invalid(
        err(&["-object", "memory-backend-memfd,id=m,size=64M,hugetlbsize=2M"]),
        "-object",
        "needs hugetlb=on",
    );
    assert_invalid(err(&["-object", "memory-backend-ram,id=m,size=64M,mem-path=/x"]), "-object", "unknown property");
    assert_invalid(
        err(&["-object", "memory-backend-memfd,id=m,size=64M", "-object", "memory-backend-ram,id=m,size=64M"]),
        "-object",
        "duplicate id",
    );
    assert_invalid(
        err(&["-object", "memory-backend-memfd,id=m,size=64M", "-M", "memory-backend=m", "-mem-path", "/dev/shm"]),
        "-mem-path",
        "conflicts",
    );
}
