//! A tiny x86 encoder for 32-bit protected-mode code (the PVH entry state:
//! flat segments, paging off, default operand size 32 bits).
//!
//! Only the handful of instructions the test guests need; each method appends
//! one instruction and returns `&mut Self` so programs read top to bottom.
//! Jumps go backwards to a [`Label`] taken with [`Asm::here`], or skip a fixed
//! number of bytes forwards.

use crate::elf::LOAD_ADDR;

/// A position in the code, for backward jumps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

/// Condition codes for `jcc rel8` (0x70 + cc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    /// ZF = 1
    Zero = 0x4,
    /// ZF = 0
    NotZero = 0x5,
}

#[derive(Clone, Debug, Default)]
pub struct Asm {
    code: Vec<u8>,
}

impl Asm {
    pub fn new() -> Self {
        Self::default()
    }

    /// The encoded bytes.
    pub fn finish(&self) -> Vec<u8> {
        self.code.clone()
    }

    /// The current position, as a jump target.
    pub fn here(&self) -> Label {
        Label(self.code.len())
    }

    /// Guest-physical address of a label, once the code is loaded at [`LOAD_ADDR`].
    pub fn addr_of(&self, label: Label) -> u32 {
        (LOAD_ADDR + label.0 as u64) as u32
    }

    /// Raw bytes (data, or an instruction this encoder does not know).
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.code.extend_from_slice(b);
        self
    }

    fn imm16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    fn imm32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// `mov al, imm8`
    pub fn mov_al(&mut self, v: u8) -> &mut Self {
        self.bytes(&[0xb0, v])
    }

    /// `mov dx, imm16`
    pub fn mov_dx(&mut self, v: u16) -> &mut Self {
        self.bytes(&[0x66, 0xba]).imm16(v)
    }

    /// `mov eax, imm32`
    pub fn mov_eax(&mut self, v: u32) -> &mut Self {
        self.bytes(&[0xb8]).imm32(v)
    }

    /// `mov ecx, imm32`
    pub fn mov_ecx(&mut self, v: u32) -> &mut Self {
        self.bytes(&[0xb9]).imm32(v)
    }

    /// `mov [abs32], eax` (MMIO or RAM store)
    pub fn store_eax(&mut self, addr: u32) -> &mut Self {
        self.bytes(&[0xa3]).imm32(addr)
    }

    /// `mov eax, [abs32]` (MMIO or RAM load)
    pub fn load_eax(&mut self, addr: u32) -> &mut Self {
        self.bytes(&[0xa1]).imm32(addr)
    }

    /// `mov [abs32], al`
    pub fn store_al(&mut self, addr: u32) -> &mut Self {
        self.bytes(&[0xa2]).imm32(addr)
    }

    /// `mov al, [abs32]`
    pub fn load_al(&mut self, addr: u32) -> &mut Self {
        self.bytes(&[0xa0]).imm32(addr)
    }

    /// `out dx, al`
    pub fn out_dx_al(&mut self) -> &mut Self {
        self.bytes(&[0xee])
    }

    /// `out imm8, al`
    pub fn out_al(&mut self, port: u8) -> &mut Self {
        self.bytes(&[0xe6, port])
    }

    /// `in al, dx`
    pub fn in_al_dx(&mut self) -> &mut Self {
        self.bytes(&[0xec])
    }

    /// `in ax, dx`
    pub fn in_ax_dx(&mut self) -> &mut Self {
        self.bytes(&[0x66, 0xed])
    }

    /// `in eax, dx`
    pub fn in_eax_dx(&mut self) -> &mut Self {
        self.bytes(&[0xed])
    }

    /// `in al, imm8`
    pub fn in_al(&mut self, port: u8) -> &mut Self {
        self.bytes(&[0xe4, port])
    }

    /// `shr eax, imm8`
    pub fn shr_eax(&mut self, n: u8) -> &mut Self {
        self.bytes(&[0xc1, 0xe8, n])
    }

    /// `test al, imm8`
    pub fn test_al(&mut self, v: u8) -> &mut Self {
        self.bytes(&[0xa8, v])
    }

    /// `xor edx, edx`
    pub fn xor_edx_edx(&mut self) -> &mut Self {
        self.bytes(&[0x31, 0xd2])
    }

    /// `xor esi, esi`
    pub fn xor_esi_esi(&mut self) -> &mut Self {
        self.bytes(&[0x31, 0xf6])
    }

    /// `inc esi`
    pub fn inc_esi(&mut self) -> &mut Self {
        self.bytes(&[0x46])
    }

    /// `mov ebx, imm32`
    pub fn mov_ebx(&mut self, v: u32) -> &mut Self {
        self.bytes(&[0xbb]).imm32(v)
    }

    /// `mov ebp, imm32`
    pub fn mov_ebp(&mut self, v: u32) -> &mut Self {
        self.bytes(&[0xbd]).imm32(v)
    }

    /// `mov eax, [ebp+0]`
    pub fn load_eax_at_ebp(&mut self) -> &mut Self {
        self.bytes(&[0x8b, 0x45, 0x00])
    }

    /// `add ebp, imm32`
    pub fn add_ebp(&mut self, v: u32) -> &mut Self {
        self.bytes(&[0x81, 0xc5]).imm32(v)
    }

    /// `cmp ebp, imm32`
    pub fn cmp_ebp(&mut self, v: u32) -> &mut Self {
        self.bytes(&[0x81, 0xfd]).imm32(v)
    }

    /// `mov [ebx], esi`
    pub fn store_esi_at_ebx(&mut self) -> &mut Self {
        self.bytes(&[0x89, 0x33])
    }

    /// `add ebx, imm32`
    pub fn add_ebx(&mut self, v: u32) -> &mut Self {
        self.bytes(&[0x81, 0xc3]).imm32(v)
    }

    /// `cmp ebx, imm32`
    pub fn cmp_ebx(&mut self, v: u32) -> &mut Self {
        self.bytes(&[0x81, 0xfb]).imm32(v)
    }

    /// `mov eax, esi`
    pub fn mov_eax_esi(&mut self) -> &mut Self {
        self.bytes(&[0x89, 0xf0])
    }

    /// `mov edi, edx`
    pub fn mov_edi_edx(&mut self) -> &mut Self {
        self.bytes(&[0x89, 0xd7])
    }

    /// `cpuid`: EAX (leaf) and ECX (subleaf) in, EAX..EDX out.
    pub fn cpuid(&mut self) -> &mut Self {
        self.bytes(&[0x0f, 0xa2])
    }

    /// `mov ebp, ebx`
    pub fn mov_ebp_ebx(&mut self) -> &mut Self {
        self.bytes(&[0x89, 0xdd])
    }

    /// `mov esi, ecx`
    pub fn mov_esi_ecx(&mut self) -> &mut Self {
        self.bytes(&[0x89, 0xce])
    }

    /// `mov eax, ebp`
    pub fn mov_eax_ebp(&mut self) -> &mut Self {
        self.bytes(&[0x89, 0xe8])
    }

    /// `out dx, al` four times with `shr eax, 8` between: EAX's four bytes,
    /// least significant first.
    pub fn out_dx_eax_bytes(&mut self) -> &mut Self {
        for i in 0..4 {
            if i > 0 {
                self.shr_eax(8);
            }
            self.out_dx_al();
        }
        self
    }

    /// `mov edi, imm32`
    pub fn mov_edi(&mut self, v: u32) -> &mut Self {
        self.bytes(&[0xbf]).bytes(&v.to_le_bytes())
    }

    /// `add edi, imm32`
    pub fn add_edi(&mut self, v: u32) -> &mut Self {
        self.bytes(&[0x81, 0xc7]).bytes(&v.to_le_bytes())
    }

    /// `cmp edi, imm32`
    pub fn cmp_edi(&mut self, v: u32) -> &mut Self {
        self.bytes(&[0x81, 0xff]).bytes(&v.to_le_bytes())
    }

    /// `mov [edi], al`
    pub fn store_al_at_edi(&mut self) -> &mut Self {
        self.bytes(&[0x88, 0x07])
    }

    /// `add al, [edi]`
    pub fn add_al_from_edi(&mut self) -> &mut Self {
        self.bytes(&[0x02, 0x07])
    }

    /// `mov eax, edi`
    pub fn mov_eax_edi(&mut self) -> &mut Self {
        self.bytes(&[0x89, 0xf8])
    }

    /// `add al, imm8`
    pub fn add_al(&mut self, v: u8) -> &mut Self {
        self.bytes(&[0x04, v])
    }

    /// `dec ecx`
    pub fn dec_ecx(&mut self) -> &mut Self {
        self.bytes(&[0x49])
    }

    /// `xor ecx, ecx`
    pub fn xor_ecx_ecx(&mut self) -> &mut Self {
        self.bytes(&[0x31, 0xc9])
    }

    /// `div ecx` (edx:eax / ecx)
    pub fn div_ecx(&mut self) -> &mut Self {
        self.bytes(&[0xf7, 0xf1])
    }

    /// `lidt [abs32]`
    pub fn lidt(&mut self, addr: u32) -> &mut Self {
        // 0F 01 /3, ModRM mod=00 reg=011 r/m=101: disp32 absolute.
        self.bytes(&[0x0f, 0x01, 0x1d]).imm32(addr)
    }

    /// `int imm8`
    pub fn int(&mut self, vector: u8) -> &mut Self {
        self.bytes(&[0xcd, vector])
    }

    /// `int3`
    pub fn int3(&mut self) -> &mut Self {
        self.bytes(&[0xcc])
    }

    /// `ud2`
    pub fn ud2(&mut self) -> &mut Self {
        self.bytes(&[0x0f, 0x0b])
    }

    /// `cli`
    pub fn cli(&mut self) -> &mut Self {
        self.bytes(&[0xfa])
    }

    /// `hlt`
    pub fn hlt(&mut self) -> &mut Self {
        self.bytes(&[0xf4])
    }

    /// `nop`
    pub fn nop(&mut self) -> &mut Self {
        self.bytes(&[0x90])
    }

    /// Relative displacement from the end of a `len`-byte instruction to `target`.
    fn rel8_to(&self, target: Label, len: usize) -> u8 {
        let rel = target.0 as i64 - (self.code.len() + len) as i64;
        i8::try_from(rel).unwrap_or_else(|_| panic!("jump of {rel} bytes does not fit rel8")) as u8
    }

    /// `jmp short target`
    pub fn jmp(&mut self, target: Label) -> &mut Self {
        let rel = self.rel8_to(target, 2);
        self.bytes(&[0xeb, rel])
    }

    /// `jmp near target` (rel32): for loops longer than a short jump reaches.
    pub fn jmp_near(&mut self, target: Label) -> &mut Self {
        let rel = target.0 as i64 - (self.code.len() + 5) as i64;
        let rel = i32::try_from(rel).unwrap_or_else(|_| panic!("jump of {rel} bytes does not fit rel32"));
        self.bytes(&[0xe9]).imm32(rel as u32)
    }

    /// `jmp short $+2+n`: skip the next `n` bytes (e.g. inline data).
    pub fn jmp_over(&mut self, n: u8) -> &mut Self {
        assert!(n <= 127);
        self.bytes(&[0xeb, n])
    }

    /// `jcc short target`
    pub fn jcc(&mut self, cond: Cond, target: Label) -> &mut Self {
        let rel = self.rel8_to(target, 2);
        self.bytes(&[0x70 + cond as u8, rel])
    }

    /// `jcc short $+2+n`: skip the next `n` bytes when `cond` holds.
    pub fn jcc_over(&mut self, cond: Cond, n: u8) -> &mut Self {
        assert!(n <= 127);
        self.bytes(&[0x70 + cond as u8, n])
    }

    /// `jmp $`: spin on this instruction forever.
    pub fn spin(&mut self) -> &mut Self {
        self.bytes(&[0xeb, 0xfe])
    }

    // ---- Short sequences built from the instructions above. ----

    /// Write each byte of `data` to the I/O port `port` with `out dx, al`.
    pub fn out_bytes(&mut self, port: u16, data: &[u8]) -> &mut Self {
        self.mov_dx(port);
        for &b in data {
            self.mov_al(b).out_dx_al();
        }
        self
    }

    /// Pulse the CPU reset line through the i8042 (command 0xFE to port 0x64).
    pub fn i8042_reset(&mut self) -> &mut Self {
        self.mov_al(0xfe).out_al(0x64)
    }

    /// Write `eax` to the port in `dx` as 10 decimal ASCII digits, leading zeros kept
    /// (fixed width, so text order is numeric order). Clobbers eax, ecx, edx, edi; leaves
    /// `dx` = `port`.
    pub fn out_decimal_eax(&mut self, port: u16) -> &mut Self {
        let mut divisor = 1_000_000_000u32;
        while divisor > 1 {
            // eax = digit, edx = the rest; `out` needs dx, so the rest waits in edi.
            self.xor_edx_edx().mov_ecx(divisor).div_ecx().mov_edi_edx();
            self.add_al(b'0').mov_dx(port).out_dx_al().mov_eax_edi();
            divisor /= 10;
        }
        self.add_al(b'0').mov_dx(port).out_dx_al()
    }

    /// `mov ecx, n; dec ecx; jnz <the dec>`: about `n` x 2 instructions of busy waiting
    /// (`n` = 0 would mean 2^32 turns).
    pub fn delay(&mut self, n: u32) -> &mut Self {
        assert!(n > 0, "delay(0) would spin 2^32 times");
        self.mov_ecx(n);
        let top = self.here();
        self.dec_ecx().jcc(Cond::NotZero, top)
    }

    /// `hlt; jmp <the hlt>`: stop for good (interrupts are off at PVH entry).
    pub fn halt_forever(&mut self) -> &mut Self {
        let top = self.here();
        self.hlt().jmp(top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        let enc = |f: fn(&mut Asm) -> &mut Asm| f(&mut Asm::new()).finish();
        assert_eq!(enc(|a| a.mov_dx(0x3f8)), [0x66, 0xba, 0xf8, 0x03]);
        assert_eq!(enc(|a| a.mov_al(0xfe)), [0xb0, 0xfe]);
        assert_eq!(enc(|a| a.out_al(0x64)), [0xe6, 0x64]);
        assert_eq!(enc(|a| a.mov_eax(0x1234_5678)), [0xb8, 0x78, 0x56, 0x34, 0x12]);
        assert_eq!(enc(|a| a.store_eax(0xd000_0000)), [0xa3, 0, 0, 0, 0xd0]);
        assert_eq!(enc(|a| a.load_eax(0xd000_0000)), [0xa1, 0, 0, 0, 0xd0]);
        assert_eq!(enc(|a| a.lidt(0x0010_0002)), [0x0f, 0x01, 0x1d, 0x02, 0x00, 0x10, 0x00]);
        assert_eq!(enc(|a| a.shr_eax(8)), [0xc1, 0xe8, 0x08]);
        assert_eq!(enc(|a| a.spin()), [0xeb, 0xfe]);
        assert_eq!(enc(|a| a.halt_forever()), [0xf4, 0xeb, 0xfd]);
        assert_eq!(enc(|a| a.i8042_reset()), [0xb0, 0xfe, 0xe6, 0x64]);
    }

    #[test]
    fn counter_encodings() {
        let enc = |f: fn(&mut Asm) -> &mut Asm| f(&mut Asm::new()).finish();
        assert_eq!(enc(|a| a.xor_edx_edx()), [0x31, 0xd2]);
        assert_eq!(enc(|a| a.xor_esi_esi()), [0x31, 0xf6]);
        assert_eq!(enc(|a| a.inc_esi()), [0x46]);
        assert_eq!(enc(|a| a.mov_eax_esi()), [0x89, 0xf0]);
        assert_eq!(enc(|a| a.mov_edi_edx()), [0x89, 0xd7]);
        assert_eq!(enc(|a| a.mov_eax_edi()), [0x89, 0xf8]);
        assert_eq!(enc(|a| a.add_al(b'0')), [0x04, 0x30]);
        assert_eq!(enc(|a| a.delay(5000)), [0xb9, 0x88, 0x13, 0, 0, 0x49, 0x75, 0xfd]);
    }

    #[test]
    fn near_jump_reaches_back_past_rel8() {
        let mut a = Asm::new();
        let top = a.here();
        a.bytes(&[0x90; 200]).jmp_near(top);
        // rel32 from the end of the 5-byte jmp (offset 205) back to 0.
        assert_eq!(&a.finish()[200..], [0xe9, 0x33, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn decimal_output_divides_by_each_power_of_ten() {
        let mut a = Asm::new();
        a.out_decimal_eax(0x3f8);
        let code = a.finish();
        // One `mov ecx, 10^k` per digit but the last, most significant first.
        let divisors: Vec<u32> =
            code.windows(5).filter(|w| w[0] == 0xb9).map(|w| u32::from_le_bytes(w[1..5].try_into().unwrap())).collect();
        assert_eq!(divisors, (1..10).rev().map(|k| 10u32.pow(k)).collect::<Vec<_>>());
        // Ten `out dx, al`, each right after dx is set to the port.
        let outs = code.windows(5).filter(|w| w[..4] == [0x66, 0xba, 0xf8, 0x03] && w[4] == 0xee).count();
        assert_eq!(outs, 10);
    }

    #[test]
    fn backward_conditional_jump() {
        let mut a = Asm::new();
        let top = a.here();
        a.in_al_dx().test_al(0x20).jcc(Cond::Zero, top);
        assert_eq!(a.finish(), [0xec, 0xa8, 0x20, 0x74, 0xfb]);
    }

    #[test]
    fn addresses_are_relative_to_the_load_address() {
        let mut a = Asm::new();
        a.nop();
        assert_eq!(a.addr_of(a.here()), 0x10_0001);
    }
}
