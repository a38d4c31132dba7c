//! x86_64 guest platform: the guest-physical layout and the state a VM and
//! its vCPUs must be given before the first instruction runs.

pub mod cpu_features;
pub mod cpu_flags;
pub mod cpu_model_cpuid;
pub mod cpu_models;
pub mod cpu_template;
pub mod cpuid;
pub mod cpuid_check;
pub mod layout;
pub mod memmap;
pub mod mptable;
pub mod regs;
