//! CRC-32 (IEEE 802.3, the zlib/PNG polynomial), slicing by 8 with tables built at
//! compile time. Not crc32fast: its first call asks the CPU for PCLMULQDQ and SSE4.1
//! with CPUID, and on a host that is itself a VM every CPUID traps: that first call
//! cost ~35 us of a restore's ~100 us snapshot read here, more than the whole checksum
//! of a 12 KiB state by table (~5 us). Same polynomial, same values: the format is
//! unchanged (a test checks it against crc32fast).

const POLY: u32 = 0xedb8_8320;

const fn tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { POLY ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

static TABLES: [[u32; 256]; 8] = tables();

/// A running CRC-32: `update` with each part, then `finalize`.
pub struct Crc32(u32);

impl Crc32 {
    pub fn new() -> Self {
        Crc32(!0)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        let t = &TABLES;
        let mut crc = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            crc = t[7][(lo & 0xff) as usize]
                ^ t[6][((lo >> 8) & 0xff) as usize]
                ^ t[5][((lo >> 16) & 0xff) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][c[4] as usize]
                ^ t[2][c[5] as usize]
                ^ t[1][c[6] as usize]
                ^ t[0][c[7] as usize];
        }
        for &b in chunks.remainder() {
            crc = (crc >> 8) ^ t[0][((crc ^ u32::from(b)) & 0xff) as usize];
        }
        self.0 = crc;
    }

    pub fn finalize(self) -> u32 {
        !self.0
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Crc32;

    #[test]
    fn the_same_values_as_crc32fast() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in [0, 1, 7, 8, 9, 63, 4096, 12_345, 20_000] {
            for split in [0, 3, len / 2] {
                let mut ours = Crc32::new();
                ours.update(&data[..split.min(len)]);
                ours.update(&data[split.min(len)..len]);
                assert_eq!(ours.finalize(), crc32fast::hash(&data[..len]), "len {len} split {split}");
            }
        }
        let mut check = Crc32::new();
        check.update(b"123456789");
        assert_eq!(check.finalize(), 0xcbf4_3926);
    }
}
