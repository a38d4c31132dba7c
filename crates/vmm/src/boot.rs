//! Puts the kernel, its initrd, command line and boot parameters into guest
//! memory, and says where the boot vCPU enters.

use crate::config::KernelConfig;
use arch::layout::{
    CMDLINE_MAX_SIZE, CMDLINE_START, HIMEM_START, PVH_INFO_START, PVH_MEMMAP_MAX_ENTRIES, PVH_MEMMAP_START,
    PVH_MODLIST_START, ZERO_PAGE_START,
};
use arch::memmap::{low_ram_end, memory_map, MemoryMapEntry};
use arch::regs::BootEntry;
use devices::guest_memory::GuestMemoryMmap;
use linux_loader::configurator::linux::LinuxBootConfigurator;
use linux_loader::configurator::pvh::PvhBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};
use linux_loader::loader::elf::start_info::{hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info};
use linux_loader::loader::elf::PvhBootCapability;
use linux_loader::loader::{load_cmdline, BzImage, Cmdline, Elf, KernelLoader};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use vm_memory::{Address, Bytes, GuestAddress};

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("cannot open kernel '{path}': {source}")]
    OpenKernel { path: PathBuf, source: std::io::Error },
    #[error("kernel '{path}' is a directory, not a kernel image")]
    KernelIsDirectory { path: PathBuf },
    #[error("kernel '{path}' is neither an ELF vmlinux nor a bzImage")]
    UnknownKernelFormat { path: PathBuf },
    #[error("kernel '{path}' is an ELF file without a PVH entry note; build it with CONFIG_PVH=y or boot its bzImage")]
    NoPvhEntry { path: PathBuf },
    #[error("cannot load kernel '{path}': {source}")]
    LoadKernel { path: PathBuf, source: linux_loader::loader::Error },
    #[error("cannot open initrd '{path}': {source}")]
    OpenInitrd { path: PathBuf, source: std::io::Error },
    #[error("initrd '{path}' ({size} bytes) does not fit in guest memory: {room} bytes free below 4 GiB after the kernel; raise -m")]
    InitrdTooLarge { path: PathBuf, size: u64, room: u64 },
    #[error("cannot read initrd '{path}' into guest memory: {source}")]
    LoadInitrd { path: PathBuf, source: vm_memory::GuestMemoryError },
    #[error("kernel command line is too long: {len} bytes, at most {max}")]
    CmdlineTooLong { len: usize, max: usize },
    #[error("invalid kernel command line: {0}")]
    Cmdline(linux_loader::cmdline::Error),
    #[error("cannot write boot parameters into guest memory: {0}")]
    BootParams(linux_loader::configurator::Error),
    #[error("guest memory map has {0} entries, more than the boot protocol allows")]
    MemoryMapTooLarge(usize),
}

type Result<T> = std::result::Result<T, BootError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KernelFormat {
    Elf,
    BzImage,
}

/// Offset of the "HdrS" magic in a bzImage's setup header.
const BZIMAGE_HDRS_OFFSET: u64 = 0x202;
const BZIMAGE_HDRS_MAGIC: &[u8; 4] = b"HdrS";
/// The 64-bit entry point sits 0x200 bytes into the protected-mode kernel.
const BZIMAGE_64BIT_ENTRY_OFFSET: u64 = 0x200;
const XEN_HVM_START_MAGIC: u32 = 0x336e_c578;
const KERNEL_BOOT_FLAG_MAGIC: u16 = 0xaa55;
const KERNEL_HDR_MAGIC: u32 = 0x5372_6448;
const KERNEL_LOADER_OTHER: u8 = 0xff;
const KERNEL_MIN_ALIGNMENT: u32 = 0x100_0000;
const PAGE_SIZE: u64 = 4096;

fn sniff_format(file: &mut File, path: &Path) -> Result<KernelFormat> {
    let unknown = || BootError::UnknownKernelFormat { path: path.to_owned() };
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic).map_err(|_| unknown())?;
    if &magic == b"\x7fELF" {
        return Ok(KernelFormat::Elf);
    }
    file.seek(SeekFrom::Start(BZIMAGE_HDRS_OFFSET)).map_err(|_| unknown())?;
    file.read_exact(&mut magic).map_err(|_| unknown())?;
    if &magic == BZIMAGE_HDRS_MAGIC {
        return Ok(KernelFormat::BzImage);
    }
    Err(unknown())
}

/// The kernel command line: the user's, then `extra` entries (device
/// descriptions the VMM appends).
pub fn build_cmdline(user: &str, extra: &[String]) -> Result<Cmdline> {
    let mut cmdline = Cmdline::new(CMDLINE_MAX_SIZE).map_err(BootError::Cmdline)?;
    let too_long = |_| BootError::CmdlineTooLong {
        len: user.len() + extra.iter().map(|e| e.len() + 1).sum::<usize>(),
        max: CMDLINE_MAX_SIZE - 1,
    };
    if !user.trim().is_empty() {
        cmdline.insert_str(user.trim()).map_err(too_long)?;
    }
    for entry in extra {
        cmdline.insert_str(entry).map_err(too_long)?;
    }
    Ok(cmdline)
}

/// Loads everything the kernel needs and returns its entry point. `rsdp`: where the ACPI
/// tables start (`acpi=on`), handed to the kernel in its boot parameters.
pub fn load_kernel(
    mem: &GuestMemoryMmap,
    mem_size: u64,
    kernel: &KernelConfig,
    cmdline: &Cmdline,
    rsdp: Option<u64>,
) -> Result<BootEntry> {
    let path = &kernel.path;
    let mut file = File::open(path).map_err(|source| BootError::OpenKernel { path: path.clone(), source })?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(BootError::KernelIsDirectory { path: path.clone() });
    }
    let format = sniff_format(&mut file, path)?;
    let load_err = |source| BootError::LoadKernel { path: path.clone(), source };
    let highmem = Some(GuestAddress(HIMEM_START));
    let loaded = match format {
        KernelFormat::Elf => Elf::load(mem, None, &mut file, highmem).map_err(load_err)?,
        KernelFormat::BzImage => BzImage::load(mem, None, &mut file, highmem).map_err(load_err)?,
    };
    let kernel_end = loaded.kernel_load.raw_value() + loaded.kernel_end;
    load_cmdline(mem, GuestAddress(CMDLINE_START), cmdline).map_err(load_err)?;
    let initrd_limit = loaded.setup_header.map_or(u64::MAX, |hdr| u64::from(hdr.initrd_addr_max) + 1);
    let initrd = match &kernel.initrd {
        Some(path) => Some(load_initrd(mem, path, kernel_end, low_ram_end(mem_size).min(initrd_limit))?),
        None => None,
    };
    let map = memory_map(mem_size);
    let cmdline_size = cmdline.as_cstring().map_err(BootError::Cmdline)?.as_bytes_with_nul().len();
    match (format, loaded.pvh_boot_cap) {
        (KernelFormat::Elf, PvhBootCapability::PvhEntryPresent(entry)) => {
            write_pvh_start_info(mem, &map, initrd, rsdp)?;
            Ok(BootEntry::Pvh { entry: entry.raw_value() })
        }
        (KernelFormat::Elf, _) => Err(BootError::NoPvhEntry { path: path.clone() }),
        (KernelFormat::BzImage, _) => {
            let hdr = loaded.setup_header.unwrap_or_default();
            write_zero_page(mem, hdr, &map, cmdline_size, initrd, rsdp)?;
            Ok(BootEntry::Linux64 { entry: loaded.kernel_load.raw_value() + BZIMAGE_64BIT_ENTRY_OFFSET })
        }
    }
}

/// Guest address and size of a loaded initrd.
#[derive(Clone, Copy, Debug)]
struct Initrd {
    addr: u64,
    size: u64,
}

/// Places the initrd as high as possible below `limit`, page-aligned, above
/// the kernel: where Linux's own loaders put it, out of the kernel's way.
fn load_initrd(mem: &GuestMemoryMmap, path: &Path, kernel_end: u64, limit: u64) -> Result<Initrd> {
    let open_err = |source| BootError::OpenInitrd { path: path.to_owned(), source };
    let mut file = File::open(path).map_err(open_err)?;
    let size = file.metadata().map_err(open_err)?.len();
    let lowest = kernel_end.next_multiple_of(PAGE_SIZE);
    let room = limit.saturating_sub(lowest);
    if size > room {
        return Err(BootError::InitrdTooLarge { path: path.to_owned(), size, room });
    }
    let addr = (limit - size) & !(PAGE_SIZE - 1);
    mem.read_exact_volatile_from(GuestAddress(addr), &mut file, size as usize)
        .map_err(|source| BootError::LoadInitrd { path: path.to_owned(), source })?;
    Ok(Initrd { addr, size })
}

fn write_pvh_start_info(
    mem: &GuestMemoryMmap,
    map: &[MemoryMapEntry],
    initrd: Option<Initrd>,
    rsdp: Option<u64>,
) -> Result<()> {
    if map.len() > PVH_MEMMAP_MAX_ENTRIES {
        return Err(BootError::MemoryMapTooLarge(map.len()));
    }
    let memmap: Vec<hvm_memmap_table_entry> =
        map.iter().map(|e| hvm_memmap_table_entry { addr: e.addr, size: e.size, type_: e.kind, reserved: 0 }).collect();
    let start_info = hvm_start_info {
        magic: XEN_HVM_START_MAGIC,
        version: 1,
        nr_modules: u32::from(initrd.is_some()),
        modlist_paddr: if initrd.is_some() { PVH_MODLIST_START } else { 0 },
        cmdline_paddr: CMDLINE_START,
        memmap_paddr: PVH_MEMMAP_START,
        memmap_entries: memmap.len() as u32,
        rsdp_paddr: rsdp.unwrap_or(0),
        ..Default::default()
    };
    let mut params = BootParams::new(&start_info, GuestAddress(PVH_INFO_START));
    params.set_sections(&memmap, GuestAddress(PVH_MEMMAP_START));
    if let Some(rd) = initrd {
        let module = hvm_modlist_entry { paddr: rd.addr, size: rd.size, ..Default::default() };
        params.set_modules(&[module], GuestAddress(PVH_MODLIST_START));
    }
    PvhBootConfigurator::write_bootparams(&params, mem).map_err(BootError::BootParams)
}

fn write_zero_page(
    mem: &GuestMemoryMmap,
    hdr: setup_header,
    map: &[MemoryMapEntry],
    cmdline_size: usize,
    initrd: Option<Initrd>,
    rsdp: Option<u64>,
) -> Result<()> {
    let mut params = boot_params { hdr, acpi_rsdp_addr: rsdp.unwrap_or(0), ..Default::default() };
    params.hdr.type_of_loader = KERNEL_LOADER_OTHER;
    params.hdr.boot_flag = KERNEL_BOOT_FLAG_MAGIC;
    params.hdr.header = KERNEL_HDR_MAGIC;
    params.hdr.cmd_line_ptr = CMDLINE_START as u32;
    params.hdr.cmdline_size = cmdline_size as u32;
    if params.hdr.kernel_alignment == 0 {
        params.hdr.kernel_alignment = KERNEL_MIN_ALIGNMENT;
    }
    if let Some(rd) = initrd {
        params.hdr.ramdisk_image = rd.addr as u32;
        params.hdr.ramdisk_size = rd.size as u32;
    }
    if map.len() > params.e820_table.len() {
        return Err(BootError::MemoryMapTooLarge(map.len()));
    }
    for (slot, e) in params.e820_table.iter_mut().zip(map) {
        *slot = boot_e820_entry { addr: e.addr, size: e.size, r#type: e.kind };
    }
    params.e820_entries = map.len() as u8;
    let params = BootParams::new(&params, GuestAddress(ZERO_PAGE_START));
    LinuxBootConfigurator::write_bootparams(&params, mem).map_err(BootError::BootParams)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(size: u64) -> GuestMemoryMmap {
        devices::guest_memory::untracked(&arch::memmap::guest_ram_ranges(size))
    }

    #[test]
    fn cmdline_joins_user_text_and_device_entries() {
        let c = build_cmdline(" console=ttyS0 ", &["virtio_mmio.device=512@0xd0000000:5".into()]).unwrap();
        assert_eq!(c.as_cstring().unwrap().to_str().unwrap(), "console=ttyS0 virtio_mmio.device=512@0xd0000000:5");
    }

    #[test]
    fn overlong_cmdline_is_refused_with_its_length() {
        let err = build_cmdline(&"a".repeat(CMDLINE_MAX_SIZE), &[]).unwrap_err();
        assert!(matches!(err, BootError::CmdlineTooLong { len: 2048, max: 2047 }), "{err}");
    }

    #[test]
    fn initrd_goes_to_the_top_of_low_memory_page_aligned() {
        let m = mem(64 << 20);
        let dir = std::env::temp_dir().join(format!("microvm-initrd-{}", std::process::id()));
        std::fs::write(&dir, vec![0x5a; 10_000]).unwrap();
        let rd = load_initrd(&m, &dir, 0x200000, 64 << 20).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(rd.addr % PAGE_SIZE, 0);
        assert!(rd.addr + rd.size <= 64 << 20 && rd.addr + rd.size > (64 << 20) - PAGE_SIZE * 2);
        assert_eq!(m.read_obj::<u8>(GuestAddress(rd.addr + 9_999)).unwrap(), 0x5a);
    }

    #[test]
    fn initrd_that_does_not_fit_says_how_much_room_there_was() {
        let m = mem(32 << 20);
        let path = std::env::temp_dir().join(format!("microvm-bigrd-{}", std::process::id()));
        let f = File::create(&path).unwrap();
        f.set_len(40 << 20).unwrap();
        let err = load_initrd(&m, &path, 0x200000, 32 << 20).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(
            matches!(err, BootError::InitrdTooLarge { size, room, .. } if size == 40 << 20 && room == (32 << 20) - 0x200000)
        );
    }

    #[test]
    fn pvh_start_info_points_at_memmap_cmdline_and_initrd() {
        let m = mem(128 << 20);
        let map = memory_map(128 << 20);
        write_pvh_start_info(&m, &map, Some(Initrd { addr: 0x700_0000, size: 0x1234 }), Some(0xe0000)).unwrap();
        let info: hvm_start_info = m.read_obj(GuestAddress(PVH_INFO_START)).unwrap();
        assert_eq!(info.magic, XEN_HVM_START_MAGIC);
        assert_eq!((info.cmdline_paddr, info.memmap_paddr), (CMDLINE_START, PVH_MEMMAP_START));
        assert_eq!(info.memmap_entries as usize, map.len());
        assert_eq!(info.nr_modules, 1);
        assert_eq!(info.rsdp_paddr, 0xe0000);
        let module: hvm_modlist_entry = m.read_obj(GuestAddress(info.modlist_paddr)).unwrap();
        assert_eq!((module.paddr, module.size), (0x700_0000, 0x1234));
        let last: hvm_memmap_table_entry =
            m.read_obj(GuestAddress(PVH_MEMMAP_START + 24 * (map.len() as u64 - 1))).unwrap();
        assert_eq!((last.addr, last.size, last.type_), (HIMEM_START, (128 << 20) - HIMEM_START, 1));
    }

    #[test]
    fn zero_page_carries_the_rsdp_only_with_acpi() {
        let m = mem(64 << 20);
        let map = memory_map(64 << 20);
        for rsdp in [Some(0xe0000), None] {
            write_zero_page(&m, setup_header::default(), &map, 16, None, rsdp).unwrap();
            let params: boot_params = m.read_obj(GuestAddress(ZERO_PAGE_START)).unwrap();
            assert_eq!({ params.acpi_rsdp_addr }, rsdp.unwrap_or(0));
        }
    }

    #[test]
    fn garbage_is_neither_elf_nor_bzimage() {
        let path = std::env::temp_dir().join(format!("microvm-garbage-{}", std::process::id()));
        std::fs::write(&path, b"#!/bin/sh\necho not a kernel\n").unwrap();
        let k = KernelConfig { path: path.clone(), cmdline: String::new(), initrd: None };
        let c = build_cmdline("", &[]).unwrap();
        let err = load_kernel(&mem(32 << 20), 32 << 20, &k, &c, None).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(err, BootError::UnknownKernelFormat { .. }), "{err}");
    }
}
