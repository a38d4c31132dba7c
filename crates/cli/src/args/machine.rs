//! The machine-shaped options: `-M`, `-m`, `-smp`, `-cpu`, `-accel`,
//! `-serial`, and the ones only `none` is accepted for. Their properties are
//! described in `options.rs`; what each does is decided here.

use vmm::arch_layout::{MAX_MEM_SIZE, MAX_VCPUS, MIN_MEM_SIZE};

use super::keyval::{check, describe, elements, parse_bool, Elem, ShortForms};
use super::machine_props::{GLOBAL_PROPS, MACHINE_PROPS, MEM_PROPS, SMP_PROPS};
use super::{invalid, unhandled, ArgsError, MEM_ALIGN};

/// What `-M` set; `None`: not given (the default applies).
#[derive(Default)]
pub(super) struct MachineOptions {
    /// `legacy` / `isa-serial=`.
    pub(super) isa_serial: Option<bool>,
    pub(super) pit: Option<bool>,
    pub(super) rtc: Option<bool>,
    pub(super) auto_kernel_cmdline: Option<bool>,
    /// `acpi=`; `auto` is off.
    pub(super) acpi: Option<bool>,
    pub(super) dump_mtree: bool,
    /// `memory-backend=ID`: the `-object memory-backend-*` holding guest RAM.
    pub(super) memory_backend: Option<String>,
    pub(super) dump_seccomp: bool,
    /// `pcie=on`: accepted with a warning (there is no PCI bus to put it on).
    pub(super) pcie: bool,
    /// `mem-merge=`: KSM advice on guest RAM.
    pub(super) mem_merge: Option<bool>,
    /// `-global kvm-pit.lost_tick_policy=delay|discard`.
    pub(super) pit_reinject: Option<bool>,
    /// `track-dirty-pages=on`: dirty-page tracking for diff snapshots (microvm's own).
    pub(super) track_dirty_pages: bool,
}

/// `-M`/`-machine [type=]microvm[,prop=value...]`; repeated options merge,
/// the last value of each property winning.
pub(super) fn parse_machine(option: &'static str, value: &str, m: &mut MachineOptions) -> Result<(), ArgsError> {
    if value.is_empty() {
        return Err(invalid(option, value, "expected microvm[,property=value...]"));
    }
    for elem in elements(option, value, Some("type"), ShortForms::FlagsOnly)? {
        // QEMU takes '_' for '-' in machine property names (vl.c's legacy spelling, which
        // Kata's runtime writes: `kernel_irqchip=on`).
        let desc = describe(MACHINE_PROPS, &elem.key).or_else(|| describe(MACHINE_PROPS, &elem.key.replace('_', "-")));
        let Some(desc) = desc else {
            return Err(ArgsError::UnknownMachineProperty { option, property: elem.key });
        };
        let s = check(option, desc, elem)?;
        match s.name() {
            "type" if s.value == "microvm" => {}
            "type" => return Err(ArgsError::UnsupportedMachine { option, machine: s.value }),
            "legacy" | "isa-serial" => m.isa_serial = Some(s.on),
            "dump-mtree" => m.dump_mtree = s.on,
            "memory-backend" => m.memory_backend = Some(s.reference(option)?),
            "dump-seccomp" => m.dump_seccomp = s.on,
            "pit" => m.pit = Some(s.on),
            "auto-kernel-cmdline" => m.auto_kernel_cmdline = Some(s.on),
            "acpi" => {
                m.acpi = Some(match s.value.as_str() {
                    "auto" => false,
                    v => parse_bool(v).ok_or_else(|| invalid(option, &s.text, "expected on|off|auto"))?,
                });
            }
            "rtc" => {
                m.rtc = Some(match s.value.as_str() {
                    "auto" => false,
                    v => parse_bool(v).ok_or_else(|| invalid(option, &s.text, "expected on|off|auto"))?,
                });
            }
            "accel" => super::host::choose_accel(option, &s.value.split(':').map(str::to_owned).collect::<Vec<_>>())?,
            "kernel-irqchip" if parse_bool(&s.value) == Some(true) => {}
            "kernel-irqchip" => return Err(invalid(option, &s.text, "only kernel-irqchip=on is supported")),
            "usb" if s.on => return Err(invalid(option, &s.text, "microvm has no USB; use usb=off")),
            "pcie" => m.pcie = s.on,
            "mem-merge" => m.mem_merge = Some(s.on),
            "track-dirty-pages" => m.track_dirty_pages = s.on,
            // Described as accepted with no effect (the table says why).
            _ if desc.no_effect.is_some() => {}
            name => return Err(unhandled(option, name)),
        }
    }
    Ok(())
}

/// `-m [size=]SIZE[,...]`; returns bytes.
pub(super) fn parse_mem(value: &str) -> Result<u64, ArgsError> {
    let mut size = None;
    for elem in elements("-m", value, Some("size"), ShortForms::FlagsOnly)? {
        match (describe(MEM_PROPS, &elem.key).map(|d| d.name), elem.value) {
            (Some("size"), Some(v)) => size = Some(v),
            (Some(key @ ("slots" | "maxmem")), _) => {
                return Err(invalid("-m", value, format!("'{key}' is not supported (no memory hotplug)")));
            }
            _ => return Err(invalid("-m", value, "expected [size=]SIZE, e.g. 512M or 1G")),
        }
    }
    let Some(size) = size else {
        return Err(invalid("-m", value, "no size given; expected e.g. 512M or 1G"));
    };
    let bytes = parse_size(&size)
        .ok_or_else(|| invalid("-m", &size, "expected a size such as 512 (MiB), 512M, 1G; suffixes K, M, G, T"))?;
    if bytes == 0 {
        return Err(invalid("-m", &size, "guest RAM cannot be zero"));
    }
    if bytes < MIN_MEM_SIZE {
        return Err(ArgsError::MemoryTooSmall { value: size, min_mib: MIN_MEM_SIZE >> 20 });
    }
    // parse_size saturates, so anything that overflowed is too large here too.
    match bytes.checked_next_multiple_of(MEM_ALIGN) {
        Some(b) if b <= MAX_MEM_SIZE => Ok(b),
        _ => Err(ArgsError::MemoryTooLarge { value: size, max_mib: MAX_MEM_SIZE >> 20 }),
    }
}

/// A QEMU size: decimal digits with an optional fraction and an optional
/// one-letter suffix (B, K, M, G, T, P, E; either case). No suffix means MiB;
/// a fraction needs a suffix other than B (`1.5G`, not `1.5`).
/// Returns `None` on syntax errors; values above `u64::MAX` saturate to it
/// (the caller rejects them as too large).
pub(super) fn parse_size(s: &str) -> Option<u64> {
    let (number, unit, suffixed) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'B' => 0,
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                'P' => 50,
                'E' => 60,
                _ => return None,
            };
            (&s[..i], 1u128 << shift, true)
        }
        _ => (s, 1u128 << 20, false),
    };
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (number, None),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut total: u128 = 0;
    for b in int.bytes() {
        total = total.saturating_mul(10).saturating_add(u128::from(b - b'0'));
    }
    total = total.saturating_mul(unit);
    if let Some(frac) = frac {
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) || !suffixed || unit == 1 {
            return None;
        }
        // Digits past the 18th are below a byte for any unit up to E (2^60 < 10^19).
        let digits = &frac[..frac.len().min(18)];
        let num: u128 = digits.parse().ok()?;
        let den = 10u128.pow(digits.len() as u32);
        total = total.saturating_add(num * unit / den);
    }
    Some(u64::try_from(total).unwrap_or(u64::MAX))
}

/// A plain decimal count (no sign, no suffix).
fn parse_count(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits only, so the only failure is overflow.
    Some(s.parse().unwrap_or(u64::MAX))
}

/// `-smp [cpus=]N[,maxcpus=N][,sockets=S][,dies=D][,clusters=C][,cores=C][,threads=T]`.
///
/// Topology keys are validated the way QEMU does (their product must be able
/// to equal maxcpus, missing ones being computed) and then dropped: the guest
/// sees N vCPUs. `maxcpus` must equal N (no CPU hotplug). Without an explicit
/// N, it is maxcpus, else the product of the topology keys (QEMU's rule).
pub(super) fn parse_smp(value: &str) -> Result<u8, ArgsError> {
    const TOPOLOGY: [&str; 5] = ["sockets", "dies", "clusters", "cores", "threads"];
    let mut cpus = None;
    let mut maxcpus = None;
    let mut topology: [Option<u64>; 5] = [None; 5];

    for Elem { key, value: val, .. } in elements("-smp", value, Some("cpus"), ShortForms::FlagsOnly)? {
        let Some(desc) = describe(SMP_PROPS, &key) else {
            return Err(invalid("-smp", value, format!("unknown key '{}'", key.escape_debug())));
        };
        let key = desc.name;
        let Some(val) = val else {
            return Err(invalid("-smp", value, format!("'{key}' needs a value (key=N)")));
        };
        let topology_index = TOPOLOGY.iter().position(|t| *t == key);
        let n = parse_count(&val).ok_or_else(|| invalid("-smp", &val, "expected a decimal number"))?;
        match topology_index {
            Some(_) if n == 0 => return Err(invalid("-smp", value, format!("{key} must be at least 1"))),
            Some(i) => topology[i] = Some(n),
            None if key == "cpus" => cpus = Some((n, val)),
            None => maxcpus = Some((n, val)),
        }
    }
    if cpus.is_none() && maxcpus.is_none() && topology.iter().all(Option::is_none) {
        return Err(invalid("-smp", value, "expected a vCPU count, e.g. 2"));
    }

    let given_product = topology.iter().flatten().fold(1u64, |acc, n| acc.saturating_mul(*n));
    let (n, n_text) = match (cpus, &maxcpus) {
        (Some(c), _) => c,
        (None, Some(m)) => m.clone(),
        (None, None) => (given_product, given_product.to_string()),
    };
    let Some(count) = u8::try_from(n).ok().filter(|c| (1..=MAX_VCPUS).contains(c)) else {
        return Err(ArgsError::VcpusOutOfRange { value: n_text, max: MAX_VCPUS });
    };
    if let Some((m, _)) = maxcpus {
        if m != n {
            return Err(invalid("-smp", value, "maxcpus must equal the vCPU count (no CPU hotplug)"));
        }
    }
    // QEMU computes a missing socket/core/thread count; dies and clusters default to 1.
    let all_given = [0, 3, 4].iter().all(|&i| topology[i].is_some());
    let consistent = if all_given { given_product == n } else { n % given_product == 0 };
    if topology.iter().any(Option::is_some) && !consistent {
        return Err(invalid("-smp", value, format!("the topology does not add up to {n} vCPUs")));
    }
    Ok(count)
}

/// `-vga`, `-parallel`, `-net`: only `none`, which is what microvm has.
pub(super) fn parse_none_only(option: &'static str, value: &str, why: &str) -> Result<(), ArgsError> {
    if value == "none" {
        Ok(())
    } else {
        Err(invalid(option, value, format!("only none is supported: {why}")))
    }
}

/// `-display none`: microvm has no display device, so every other display
/// (`vnc=HOST:N`, gtk, sdl, curses, ...) is refused in one line.
pub(super) fn parse_display(option: &'static str, value: &str) -> Result<(), ArgsError> {
    let kind = value.split([',', '=']).next().unwrap_or_default();
    let reason = match kind {
        "none" if value == "none" => return Ok(()),
        "vnc" => {
            "microvm has no display device, so a VNC server would have nothing to show; use -display none \
                  (the guest's console is the serial port or a virtconsole)"
        }
        _ => {
            "microvm has no display device; use -display none (the guest's console is the serial port or a \
              virtconsole)"
        }
    };
    Err(invalid(option, value, reason))
}

/// `-global DRIVER.PROP=VALUE` (or `driver=D,property=P,value=V`): only the
/// settings described in `GLOBAL_PROPS`; an unknown one is named in the error.
pub(super) fn parse_global(value: &str, m: &mut MachineOptions) -> Result<(), ArgsError> {
    const GLOBAL: &str = "-global";
    let mut parts = (None, None, None);
    let elems = elements(GLOBAL, value, None, ShortForms::FlagsOnly)?;
    let (key, setting) = match elems.as_slice() {
        [Elem { key, value: Some(v), .. }] if key.contains('.') => (key.clone(), v.clone()),
        _ => {
            for e in &elems {
                match (e.key.as_str(), &e.value) {
                    ("driver", Some(v)) => parts.0 = Some(v.clone()),
                    ("property", Some(v)) => parts.1 = Some(v.clone()),
                    ("value", Some(v)) => parts.2 = Some(v.clone()),
                    _ => return Err(invalid(GLOBAL, value, "expected DRIVER.PROP=VALUE")),
                }
            }
            let (Some(d), Some(p), Some(v)) = parts else {
                return Err(invalid(GLOBAL, value, "expected DRIVER.PROP=VALUE"));
            };
            (format!("{d}.{p}"), v)
        }
    };
    let Some(desc) = describe(GLOBAL_PROPS, &key) else {
        let known = GLOBAL_PROPS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ");
        return Err(invalid(
            GLOBAL,
            value,
            format!("unknown global property '{}'; microvm knows {known}", key.escape_debug()),
        ));
    };
    match (desc.name, setting.as_str()) {
        ("kvm-pit.lost_tick_policy", "delay") => m.pit_reinject = Some(true),
        ("kvm-pit.lost_tick_policy", "discard") => m.pit_reinject = Some(false),
        ("kvm-pit.lost_tick_policy", _) => {
            return Err(invalid(GLOBAL, value, "KVM's PIT takes lost_tick_policy=delay or discard"))
        }
        ("virtio-mmio.force-legacy", v) => match parse_bool(v) {
            Some(false) => {}
            Some(true) => {
                return Err(invalid(
                    GLOBAL,
                    value,
                    "microvm's virtio-mmio transport is modern only (version 2, virtio 1.x), it has no legacy \
                     version 1; use force-legacy=off",
                ))
            }
            None => return Err(invalid(GLOBAL, value, super::keyval::BOOL_EXPECTED)),
        },
        (name, _) => return Err(unhandled(GLOBAL, name)),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
