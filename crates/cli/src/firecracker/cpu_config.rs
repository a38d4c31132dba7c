//! `PUT /cpu-config` (and `--config-file`'s `cpu-config`): Firecracker's custom CPU
//! template, parsed when it arrives (a bad bitmap, number or register is a 400 then), and
//! applied to every vCPU at `InstanceStart` after the CPUID microvm builds
//! (`arch::cpu_template`); a leaf or MSR KVM does not have fails the start with
//! Firecracker's message. Only x86_64's parts: `reg_modifiers` and `vcpu_features` are
//! aarch64's and refused by name.

use super::vm_config::ConfigError;
use fc_api::model::CpuConfig;
use vmm::cpu_features::Reg;
use vmm::cpu_template::{
    parse_number, parse_register, Bitmap, CpuTemplate, CpuidModifier, KvmCapability, MsrModifier, TemplateError,
};

/// Bits of a CPUID register and of an MSR.
const CPUID_BITS: u32 = 32;
const MSR_BITS: u32 = 64;

/// The template a request describes.
pub fn template(config: &CpuConfig) -> Result<CpuTemplate, ConfigError> {
    if !config.reg_modifiers.is_empty() {
        return Err(ConfigError::NotSupported("reg_modifiers (aarch64 registers; microvm is x86_64)"));
    }
    if !config.vcpu_features.is_empty() {
        return Err(ConfigError::NotSupported("vcpu_features (aarch64 vCPU features; microvm is x86_64)"));
    }
    let parse = || -> Result<CpuTemplate, TemplateError> {
        let kvm_capabilities =
            config.kvm_capabilities.iter().map(|c| KvmCapability::parse(c)).collect::<Result<_, _>>()?;
        let mut cpuid = Vec::with_capacity(config.cpuid_modifiers.len());
        for leaf in &config.cpuid_modifiers {
            let registers = leaf
                .modifiers
                .iter()
                .map(|m| Ok((parse_register(&m.register)?, Bitmap::parse(&m.bitmap, CPUID_BITS)?)))
                .collect::<Result<Vec<(Reg, Bitmap)>, TemplateError>>()?;
            cpuid.push(CpuidModifier {
                leaf: parse_number(&leaf.leaf)?,
                subleaf: parse_number(&leaf.subleaf)?,
                flags: leaf.flags,
                registers,
            });
        }
        let msrs = config
            .msr_modifiers
            .iter()
            .map(|m| Ok(MsrModifier { addr: parse_number(&m.addr)?, bitmap: Bitmap::parse(&m.bitmap, MSR_BITS)? }))
            .collect::<Result<_, TemplateError>>()?;
        Ok(CpuTemplate { kvm_capabilities, cpuid, msrs })
    };
    parse().map_err(ConfigError::CpuTemplate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(value: serde_json::Value) -> CpuConfig {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_template_is_parsed_whole() {
        let t = template(&config(json!({
            "kvm_capabilities": ["121", "!9"],
            "cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0b0", "flags": 0, "modifiers": [
                {"register": "ecx", "bitmap": "0bx1xxxxxxxxxxxxxxxxxxxxxxxxxxxxx0"}]}],
            "msr_modifiers": [{"addr": "0x10a", "bitmap": "0b1"}],
        })))
        .unwrap();
        assert_eq!(t.kvm_capabilities, [KvmCapability::Require(121), KvmCapability::Drop(9)]);
        assert_eq!((t.cpuid[0].leaf, t.cpuid[0].subleaf), (1, 0));
        assert_eq!(t.cpuid[0].registers, [(Reg::Ecx, Bitmap { filter: (1 << 30) | 1, value: 1 << 30 })]);
        assert_eq!((t.msrs[0].addr, t.msrs[0].bitmap), (0x10a, Bitmap { filter: 1, value: 1 }));
    }

    #[test]
    fn each_bad_part_is_named() {
        let leaf = |leaf: &str, register: &str, bitmap: &str| {
            json!({"cpuid_modifiers": [{"leaf": leaf, "subleaf": "0", "flags": 0,
                "modifiers": [{"register": register, "bitmap": bitmap}]}]})
        };
        let refused = |value| template(&config(value)).unwrap_err().to_string();
        assert!(refused(leaf("0x1", "ecx", "0b2")).contains("[0b2] as a bitmap - unknown character"));
        assert!(refused(leaf("0x1", "ecx", &format!("0b{}", "1".repeat(33)))).contains("string is too long"));
        assert!(refused(leaf("one", "ecx", "0b1")).contains("[one] as a number"));
        assert!(refused(leaf("0x1", "rcx", "0b1")).contains("Unknown CPUID register [rcx]"));
        let msr = json!({"msr_modifiers": [{"addr": "0x10a", "bitmap": format!("0b{}", "x".repeat(65))}]});
        assert!(refused(msr).contains("string is too long"));
        assert!(refused(json!({"kvm_capabilities": ["!x"]})).contains("[!x] as a kvm capability"));
        let arm = json!({"reg_modifiers": [{"addr": "0x1", "bitmap": "0b1"}]});
        assert_eq!(refused(arm), "reg_modifiers (aarch64 registers; microvm is x86_64) is not supported by microvm.");
        assert!(refused(json!({"vcpu_features": [{"index": 0, "bitmap": "0b1"}]})).starts_with("vcpu_features"));
    }
}
