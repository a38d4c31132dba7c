//! Firecracker's custom CPU template (`PUT /cpu-config`, x86_64): CPUID leaves and MSRs
//! changed bit by bit with tri-state bitmaps ("0b" then `0`, `1` or `x` per bit, most
//! significant first), applied to every vCPU after microvm's own CPUID (`cpuid.rs`) and
//! `-cpu` features (`cpu_features.rs`), so the template has the last word, as in
//! Firecracker. The strings are parsed here, once, when the request arrives.

use crate::cpu_flags::{reg_mut, Reg};
use kvm_bindings::kvm_cpuid_entry2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Firecracker's message for a bitmap it cannot parse.
    #[error("Failed to parse string [{text}] as a bitmap - {why}")]
    Bitmap { text: String, why: &'static str },
    #[error("Failed to parse string [{0}] as a number for CPU template: use 0x (hexadecimal), 0b (binary) or decimal digits")]
    Number(String),
    #[error("Unknown CPUID register [{0}]: eax, ebx, ecx or edx")]
    Register(String),
    #[error("Failed to parse string [{0}] as a kvm capability - can not convert to numeric")]
    Capability(String),
    /// Firecracker's messages for what KVM does not offer.
    #[error("Template changes a CPUID entry not supported by KVM: Leaf: {leaf:#x}, Subleaf: {subleaf:#x}")]
    CpuidNotSupported { leaf: u32, subleaf: u32 },
    #[error("Template changes an MSR entry not supported by KVM: Register Address: {0:#x}")]
    MsrNotSupported(u32),
    #[error("Missing KVM capability {0} (the template's kvm_capabilities)")]
    MissingCapability(u32),
}

/// Bits to force and their values: `filter` has a 1 for each bit the bitmap sets to 0 or
/// 1, `value` the bits set to 1. Bits outside `filter` (`x`) keep their value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bitmap {
    pub filter: u64,
    pub value: u64,
}

impl Bitmap {
    /// Parses `text` for a register of `bits` bits, as Firecracker does: an optional "0b",
    /// then at most `bits` characters of `0`, `1` or `x`, the last one bit 0; missing high
    /// bits are `x`; `_` separates digits for readability.
    pub fn parse(text: &str, bits: u32) -> Result<Bitmap, TemplateError> {
        let err = |why| TemplateError::Bitmap { text: text.to_owned(), why };
        let digits = text.strip_prefix("0b").unwrap_or(text);
        let mut bitmap = Bitmap::default();
        let mut bit = 0;
        for c in digits.bytes().rev() {
            if c == b'_' {
                continue;
            }
            if bit == bits {
                return Err(err("string is too long"));
            }
            match c {
                b'x' => {}
                b'0' => bitmap.filter |= 1 << bit,
                b'1' => {
                    bitmap.filter |= 1 << bit;
                    bitmap.value |= 1 << bit;
                }
                _ => return Err(err("unknown character (0, 1, x or _)")),
            }
            bit += 1;
        }
        Ok(bitmap)
    }

    pub fn apply(&self, value: u64) -> u64 {
        (value & !self.filter) | self.value
    }
}

/// A number as the template writes one: "0x..." (hexadecimal), "0b..." (binary) or decimal
/// (the OpenAPI file allows it; Firecracker's own parser wants a prefix).
pub fn parse_number(text: &str) -> Result<u32, TemplateError> {
    let parsed = if let Some(hex) = text.strip_prefix("0x") {
        u32::from_str_radix(hex, 16)
    } else if let Some(bin) = text.strip_prefix("0b") {
        u32::from_str_radix(bin, 2)
    } else {
        text.parse()
    };
    parsed.map_err(|_| TemplateError::Number(text.to_owned()))
}

pub fn parse_register(name: &str) -> Result<Reg, TemplateError> {
    match name {
        "eax" => Ok(Reg::Eax),
        "ebx" => Ok(Reg::Ebx),
        "ecx" => Ok(Reg::Ecx),
        "edx" => Ok(Reg::Edx),
        _ => Err(TemplateError::Register(name.to_owned())),
    }
}

/// `kvm_capabilities`: "N" must be offered by KVM; "!N" removes N from Firecracker's own
/// list of required capabilities, which microvm does not have (its checks are its code's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvmCapability {
    Require(u32),
    Drop(u32),
}

impl KvmCapability {
    pub fn parse(text: &str) -> Result<KvmCapability, TemplateError> {
        let number = |s: &str| s.parse().map_err(|_| TemplateError::Capability(text.to_owned()));
        match text.strip_prefix('!') {
            Some(rest) => Ok(KvmCapability::Drop(number(rest)?)),
            None => Ok(KvmCapability::Require(number(text)?)),
        }
    }
}

/// One CPUID leaf's changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuidModifier {
    pub leaf: u32,
    pub subleaf: u32,
    /// KVM's `kvm_cpuid_entry2.flags` for the entry (KVM_CPUID_FLAG_SIGNIFCANT_INDEX...).
    pub flags: u32,
    pub registers: Vec<(Reg, Bitmap)>,
}

/// One MSR's change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsrModifier {
    pub addr: u32,
    pub bitmap: Bitmap,
}

/// A whole template; the default changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuTemplate {
    pub kvm_capabilities: Vec<KvmCapability>,
    pub cpuid: Vec<CpuidModifier>,
    pub msrs: Vec<MsrModifier>,
}

impl CpuTemplate {
    /// Applies the CPUID modifiers to one vCPU's entries. A leaf KVM does not list is an
    /// error, as in Firecracker (adding one would show the guest what KVM cannot back).
    pub fn apply_cpuid(&self, entries: &mut [kvm_cpuid_entry2]) -> Result<(), TemplateError> {
        for m in &self.cpuid {
            let entry = entries
                .iter_mut()
                .find(|e| e.function == m.leaf && e.index == m.subleaf)
                .ok_or(TemplateError::CpuidNotSupported { leaf: m.leaf, subleaf: m.subleaf })?;
            entry.flags = m.flags;
            for &(reg, bitmap) in &m.registers {
                let value = reg_mut(entry, reg);
                *value = bitmap.apply(u64::from(*value)) as u32;
            }
        }
        Ok(())
    }

    /// The capabilities KVM must offer.
    pub fn required_capabilities(&self) -> impl Iterator<Item = u32> + '_ {
        self.kvm_capabilities.iter().filter_map(|c| match c {
            KvmCapability::Require(n) => Some(*n),
            KvmCapability::Drop(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmaps_parse_as_firecracker_parses_them() {
        let b = Bitmap::parse("0bxxxxxxxxxxxxxxxxxxxxxxxxxxxx0101", 32).unwrap();
        assert_eq!((b.filter, b.value), (0b1111, 0b0101));
        assert_eq!(b.apply(0xffff_fff0), 0xffff_fff5);
        // Short strings leave the high bits alone; underscores are ignored.
        assert_eq!(Bitmap::parse("1_0", 32).unwrap(), Bitmap { filter: 0b11, value: 0b10 });
        let all = Bitmap::parse(&format!("0b1{}", "0".repeat(63)), 64).unwrap();
        assert_eq!((all.filter, all.value), (u64::MAX, 1 << 63));
        let long = Bitmap::parse(&format!("0b{}", "1".repeat(33)), 32);
        assert!(matches!(long, Err(TemplateError::Bitmap { why: "string is too long", .. })), "{long:?}");
        let bad = Bitmap::parse("0b012", 32).unwrap_err();
        assert_eq!(bad.to_string(), "Failed to parse string [0b012] as a bitmap - unknown character (0, 1, x or _)");
    }

    #[test]
    fn numbers_registers_and_capabilities() {
        assert_eq!(parse_number("0x80000001"), Ok(0x8000_0001));
        assert_eq!(parse_number("0b101"), Ok(5));
        assert_eq!(parse_number("7"), Ok(7));
        assert!(parse_number("0xg").is_err() && parse_number("").is_err());
        assert_eq!(parse_register("ecx"), Ok(Reg::Ecx));
        assert!(parse_register("rax").is_err());
        assert_eq!(KvmCapability::parse("121"), Ok(KvmCapability::Require(121)));
        assert_eq!(KvmCapability::parse("!121"), Ok(KvmCapability::Drop(121)));
        assert!(KvmCapability::parse("cap").is_err());
    }

    #[test]
    fn cpuid_modifiers_change_only_their_bits_and_missing_leaves_are_refused() {
        let mut entries = vec![kvm_cpuid_entry2 { function: 1, index: 0, ecx: 0x0f, edx: 7, ..Default::default() }];
        let template = CpuTemplate {
            cpuid: vec![CpuidModifier {
                leaf: 1,
                subleaf: 0,
                flags: 0,
                registers: vec![(Reg::Ecx, Bitmap::parse("0b1xxx0", 32).unwrap())],
            }],
            ..Default::default()
        };
        template.apply_cpuid(&mut entries).unwrap();
        // Bit 4 set, bit 0 cleared, bits 1-3 kept; EDX untouched.
        assert_eq!((entries[0].ecx, entries[0].edx), (0x1e, 7));
        let missing = CpuTemplate {
            cpuid: vec![CpuidModifier { leaf: 0x4000_00ff, subleaf: 2, flags: 0, registers: vec![] }],
            ..Default::default()
        };
        assert_eq!(
            missing.apply_cpuid(&mut entries).unwrap_err().to_string(),
            "Template changes a CPUID entry not supported by KVM: Leaf: 0x400000ff, Subleaf: 0x2"
        );
    }
}
