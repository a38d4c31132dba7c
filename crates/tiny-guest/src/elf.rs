//! A minimal ELF64 x86-64 executable with a PVH entry note, built byte by byte.
//!
//! File layout (all little-endian):
//!
//! | offset  | content                                                   |
//! | ------- | --------------------------------------------------------- |
//! | 0x0     | ELF header (64 bytes)                                     |
//! | 0x40    | program header 0: PT_LOAD, the code, at 1 MiB             |
//! | 0x78    | program header 1: PT_NOTE, the Xen PHYS32_ENTRY note      |
//! | 0xb0    | the note: namesz 4, descsz 4, type 18, "Xen\0", entry u32 |
//! | 0x1000  | the code (page aligned, like a linked kernel's segment)   |
//!
//! rust-vmm's linux-loader (`Elf::load`) reads the header, every program
//! header, loads each PT_LOAD at its `p_paddr`, and scans PT_NOTE segments for
//! a note of type `XEN_ELFNOTE_PHYS32_ENTRY` whose name is exactly 4 bytes
//! "Xen\0", with name and descriptor each padded to 4 bytes.

/// Guest-physical (and virtual) address the code is loaded at and entered at:
/// microvm's HIMEM_START, where the Linux boot protocols put kernels.
pub const LOAD_ADDR: u64 = 0x10_0000;

/// Xen ELF note type carrying the 32-bit PVH entry point.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

pub const EHDR_SIZE: usize = 64;
pub const PHDR_SIZE: usize = 56;
/// File offset of the code; the PT_LOAD alignment.
pub const CODE_OFFSET: usize = 0x1000;

pub const ET_EXEC: u16 = 2;
pub const EM_X86_64: u16 = 62;
pub const PT_LOAD: u32 = 1;
pub const PT_NOTE: u32 = 4;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// The PVH entry note: name "Xen\0" and a 4-byte descriptor holding `entry`.
fn pvh_note(entry: u32) -> Vec<u8> {
    let name = b"Xen\0";
    let mut note = Vec::with_capacity(20);
    note.extend_from_slice(&(name.len() as u32).to_le_bytes()); // n_namesz
    note.extend_from_slice(&4u32.to_le_bytes()); // n_descsz
    note.extend_from_slice(&XEN_ELFNOTE_PHYS32_ENTRY.to_le_bytes()); // n_type
    note.extend_from_slice(name); // already 4-byte aligned
    note.extend_from_slice(&entry.to_le_bytes());
    note
}

struct Phdr {
    p_type: u32,
    p_flags: u32,
    offset: u64,
    addr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

impl Phdr {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.p_type.to_le_bytes());
        out.extend_from_slice(&self.p_flags.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.addr.to_le_bytes()); // p_vaddr
        out.extend_from_slice(&self.addr.to_le_bytes()); // p_paddr
        out.extend_from_slice(&self.filesz.to_le_bytes());
        out.extend_from_slice(&self.memsz.to_le_bytes());
        out.extend_from_slice(&self.align.to_le_bytes());
    }
}

fn write_ehdr(out: &mut Vec<u8>, entry: u64, phnum: u16) {
    // e_ident: magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_SYSV, padding.
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&ET_EXEC.to_le_bytes());
    out.extend_from_slice(&EM_X86_64.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&entry.to_le_bytes()); // e_entry
    out.extend_from_slice(&(EHDR_SIZE as u64).to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no section headers
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&(EHDR_SIZE as u16).to_le_bytes()); // e_ehsize
    out.extend_from_slice(&(PHDR_SIZE as u16).to_le_bytes()); // e_phentsize
    out.extend_from_slice(&phnum.to_le_bytes()); // e_phnum
    out.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
}

/// An ELF64 x86-64 `ET_EXEC` whose single PT_LOAD segment puts `code` at
/// [`LOAD_ADDR`] and whose PT_NOTE segment announces [`LOAD_ADDR`] as the PVH
/// (32-bit protected mode, paging off) entry point. `e_entry` is the same address.
pub fn pvh_elf(code: &[u8]) -> Vec<u8> {
    build(code, true)
}

/// The same executable without the PT_NOTE segment: a valid ELF that has no
/// PVH entry point (a kernel microvm must refuse).
pub fn elf_without_pvh_note(code: &[u8]) -> Vec<u8> {
    build(code, false)
}

fn build(code: &[u8], with_note: bool) -> Vec<u8> {
    let phnum: u16 = if with_note { 2 } else { 1 };
    let note_offset = EHDR_SIZE + phnum as usize * PHDR_SIZE;
    let note = if with_note { pvh_note(LOAD_ADDR as u32) } else { Vec::new() };
    assert!(note_offset + note.len() <= CODE_OFFSET);

    let mut out = Vec::with_capacity(CODE_OFFSET + code.len());
    write_ehdr(&mut out, LOAD_ADDR, phnum);
    Phdr {
        p_type: PT_LOAD,
        p_flags: PF_R | PF_W | PF_X,
        offset: CODE_OFFSET as u64,
        addr: LOAD_ADDR,
        filesz: code.len() as u64,
        memsz: code.len() as u64,
        align: CODE_OFFSET as u64,
    }
    .write(&mut out);
    if with_note {
        Phdr {
            p_type: PT_NOTE,
            p_flags: PF_R,
            offset: note_offset as u64,
            addr: 0,
            filesz: note.len() as u64,
            memsz: 0,
            align: 4,
        }
        .write(&mut out);
    }
    out.extend_from_slice(&note);
    out.resize(CODE_OFFSET, 0);
    out.extend_from_slice(code);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], off: usize) -> u16 {
        u16::from_le_bytes(b[off..off + 2].try_into().unwrap())
    }
    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
    }

    /// (type, offset, paddr, filesz, memsz) of every program header.
    fn phdrs(elf: &[u8]) -> Vec<(u32, u64, u64, u64, u64)> {
        let phoff = u64_at(elf, 32) as usize;
        let phentsize = u16_at(elf, 54) as usize;
        let phnum = u16_at(elf, 56) as usize;
        (0..phnum)
            .map(|i| {
                let p = phoff + i * phentsize;
                (u32_at(elf, p), u64_at(elf, p + 8), u64_at(elf, p + 24), u64_at(elf, p + 32), u64_at(elf, p + 40))
            })
            .collect()
    }

    #[test]
    fn header_parses_back() {
        let code = [0xf4, 0xeb, 0xfd];
        let elf = pvh_elf(&code);
        assert_eq!(&elf[..4], b"\x7fELF");
        assert_eq!(elf[4], 2, "ELFCLASS64");
        assert_eq!(elf[5], 1, "little-endian");
        assert_eq!(elf[6], 1, "EV_CURRENT");
        assert_eq!(u16_at(&elf, 16), ET_EXEC);
        assert_eq!(u16_at(&elf, 18), EM_X86_64);
        assert_eq!(u32_at(&elf, 20), 1);
        assert_eq!(u64_at(&elf, 24), LOAD_ADDR, "e_entry");
        assert_eq!(u64_at(&elf, 32), EHDR_SIZE as u64, "e_phoff");
        assert_eq!(u16_at(&elf, 52), EHDR_SIZE as u16, "e_ehsize");
        assert_eq!(u16_at(&elf, 54), PHDR_SIZE as u16, "e_phentsize");
        assert_eq!(u16_at(&elf, 56), 2, "e_phnum");
        assert_eq!(u16_at(&elf, 60), 0, "e_shnum");
    }

    #[test]
    fn one_load_segment_holds_the_code_at_1mib() {
        let code: Vec<u8> = (0..=255).collect();
        let elf = pvh_elf(&code);
        let loads: Vec<_> = phdrs(&elf).into_iter().filter(|p| p.0 == PT_LOAD).collect();
        assert_eq!(loads.len(), 1);
        let (_, offset, paddr, filesz, memsz) = loads[0];
        assert_eq!(paddr, LOAD_ADDR);
        assert_eq!(filesz, code.len() as u64);
        assert_eq!(memsz, code.len() as u64);
        assert_eq!(offset % 0x1000, paddr % 0x1000, "offset and address congruent modulo p_align");
        assert_eq!(&elf[offset as usize..(offset + filesz) as usize], &code[..]);
        // p_vaddr equals p_paddr.
        assert_eq!(u64_at(&elf, EHDR_SIZE + 16), LOAD_ADDR);
    }

    #[test]
    fn note_segment_holds_the_pvh_entry() {
        let elf = pvh_elf(&[0xf4]);
        let notes: Vec<_> = phdrs(&elf).into_iter().filter(|p| p.0 == PT_NOTE).collect();
        assert_eq!(notes.len(), 1);
        let (_, offset, _, filesz, _) = notes[0];
        let n = offset as usize;
        assert_eq!(offset % 4, 0);
        assert_eq!(filesz, 20);
        assert_eq!(u32_at(&elf, n), 4, "n_namesz");
        assert_eq!(u32_at(&elf, n + 4), 4, "n_descsz");
        assert_eq!(u32_at(&elf, n + 8), XEN_ELFNOTE_PHYS32_ENTRY);
        assert_eq!(&elf[n + 12..n + 16], b"Xen\0");
        assert_eq!(u32_at(&elf, n + 16), LOAD_ADDR as u32);
    }

    #[test]
    fn elf_without_note_has_only_the_load_segment() {
        let elf = elf_without_pvh_note(&[0xf4]);
        let types: Vec<u32> = phdrs(&elf).into_iter().map(|p| p.0).collect();
        assert_eq!(types, [PT_LOAD]);
        assert_eq!(&elf[CODE_OFFSET..], [0xf4]);
    }

    /// The loader microvm itself uses accepts the file and finds the PVH entry.
    #[test]
    fn linux_loader_finds_pvh_entry_and_loads_code() {
        use linux_loader::loader::elf::{Elf, PvhBootCapability};
        use linux_loader::loader::KernelLoader;
        use std::io::Cursor;
        use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

        let code = [0xb0, 0x41, 0xf4, 0xeb, 0xfd];
        let elf = pvh_elf(&code);
        let mem: GuestMemoryMmap<()> = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
        let result = Elf::load(&mem, None, &mut Cursor::new(&elf), Some(GuestAddress(LOAD_ADDR))).unwrap();
        assert_eq!(result.kernel_load, GuestAddress(LOAD_ADDR));
        assert_eq!(result.kernel_end, LOAD_ADDR + code.len() as u64);
        match result.pvh_boot_cap {
            PvhBootCapability::PvhEntryPresent(addr) => assert_eq!(addr, GuestAddress(LOAD_ADDR)),
            other => panic!("no PVH entry found: {other}"),
        }
        let without = elf_without_pvh_note(&code);
        let result = Elf::load(&mem, None, &mut Cursor::new(&without), Some(GuestAddress(LOAD_ADDR))).unwrap();
        // With no PT_NOTE at all linux-loader leaves its default, PvhEntryIgnored.
        assert!(!matches!(result.pvh_boot_cap, PvhBootCapability::PvhEntryPresent(_)));
        let mut loaded = [0u8; 5];
        mem.read_slice(&mut loaded, GuestAddress(LOAD_ADDR)).unwrap();
        assert_eq!(loaded, code);
    }
}
