//! Just enough ELF64 reading to check images: is it ELF, is it static, does a kernel carry
//! the PVH entry note (what lets a VMM start it in 32-bit protected mode, no bzImage setup).

const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;
/// XEN_ELFNOTE_PHYS32_ENTRY (xen/include/public/elfnote.h), name "Xen".
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 0x12;

pub struct Elf<'a> {
    data: &'a [u8],
}

impl<'a> Elf<'a> {
    /// Accepts 64-bit little-endian ELF only (x86_64 is all this project builds for).
    pub fn parse(data: &'a [u8]) -> Result<Self, String> {
        if data.len() < 64 || &data[..4] != b"\x7fELF" {
            return Err("not an ELF file".into());
        }
        if data[4] != 2 || data[5] != 1 {
            return Err("not a 64-bit little-endian ELF file".into());
        }
        Ok(Elf { data })
    }

    fn u16(&self, off: usize) -> u16 {
        u16::from_le_bytes(self.data[off..off + 2].try_into().unwrap())
    }
    fn u32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.data[off..off + 4].try_into().unwrap())
    }
    fn u64(&self, off: usize) -> u64 {
        u64::from_le_bytes(self.data[off..off + 8].try_into().unwrap())
    }

    /// (p_type, file offset, file size) of each program header that lies inside the file.
    fn segments(&self) -> Vec<(u32, usize, usize)> {
        let (phoff, phentsize, phnum) = (self.u64(0x20) as usize, self.u16(0x36) as usize, self.u16(0x38) as usize);
        (0..phnum)
            .map(|i| phoff + i * phentsize)
            .filter(|&ph| ph + 56 <= self.data.len())
            .map(|ph| (self.u32(ph), self.u64(ph + 8) as usize, self.u64(ph + 32) as usize))
            .filter(|&(_, off, size)| off.checked_add(size).is_some_and(|end| end <= self.data.len()))
            .collect()
    }

    /// A dynamically linked program names its loader in PT_INTERP.
    pub fn is_static(&self) -> bool {
        !self.segments().iter().any(|s| s.0 == PT_INTERP)
    }

    /// Notes from PT_NOTE segments: (name without NUL, type, descriptor).
    pub fn notes(&self) -> Vec<(String, u32, &'a [u8])> {
        let mut notes = Vec::new();
        for (_, off, size) in self.segments().into_iter().filter(|s| s.0 == PT_NOTE) {
            let seg = &self.data[off..off + size];
            let mut p = 0;
            while p + 12 <= seg.len() {
                let word = |o: usize| u32::from_le_bytes(seg[o..o + 4].try_into().unwrap()) as usize;
                let (namesz, descsz, ty) = (word(p), word(p + 4), word(p + 8) as u32);
                let name_at = p + 12;
                let desc_at = name_at + namesz.div_ceil(4) * 4;
                let next = desc_at + descsz.div_ceil(4) * 4;
                if next > seg.len() {
                    break;
                }
                let name = String::from_utf8_lossy(&seg[name_at..name_at + namesz]).trim_end_matches('\0').to_string();
                notes.push((name, ty, &seg[desc_at..desc_at + descsz]));
                p = next;
            }
        }
        notes
    }

    /// The 32-bit PVH entry address, if the kernel has one.
    pub fn pvh_entry(&self) -> Option<u64> {
        self.notes().into_iter().find(|n| n.0 == "Xen" && n.1 == XEN_ELFNOTE_PHYS32_ENTRY).map(|(_, _, d)| {
            match d.len() {
                4 => u32::from_le_bytes(d.try_into().unwrap()) as u64,
                n if n >= 8 => u64::from_le_bytes(d[..8].try_into().unwrap()),
                _ => 0,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf() {
        assert!(Elf::parse(b"MZ not an elf at all, but long enough to hold a header..........").is_err());
    }

    #[test]
    fn own_test_binary_is_elf() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let elf = Elf::parse(&exe).unwrap();
        assert_eq!(elf.pvh_entry(), None);
        // GNU toolchains always emit a .note.gnu.build-id or ABI tag note
        assert!(elf.notes().iter().any(|n| n.0 == "GNU"));
    }
}
