//! The tables as real ACPI tools read them (Debian's acpica-tools, installed by
//! `cargo xtask deps`): `iasl -d` must disassemble each without a complaint and
//! the text must list the machine's devices; `acpiexec` must run the DSDT's
//! methods. iasl cannot read a bare RSDP (it has no table header); the unit
//! tests check it field by field.

use acpi::{AcpiTable, AcpiTables, IsaDevice, KeyboardController, MachineDescription, VirtioMmioSlot};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `-M microvm,rtc=on -smp 2 -serial stdio` with virtio blk, net and console in slots 0-2.
fn machine_with_blk_net_console_and_rtc() -> MachineDescription {
    let mut machine = MachineDescription::microvm(2);
    machine.virtio_slots = (0..3).map(|i| VirtioMmioSlot::microvm(i).unwrap()).collect();
    machine.com1 = Some(IsaDevice::com1());
    machine.rtc = Some(IsaDevice::rtc());
    machine
}

/// A fresh directory for one test's files.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("microvm-acpi-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs an acpica-tools program in `dir`, failing the test with a hint when it is missing.
fn run_acpica(program: &str, args: &[&str], dir: &Path) -> (bool, String) {
    let output = match Command::new(program).args(args).current_dir(dir).stdin(Stdio::null()).output() {
        Ok(output) => output,
        Err(e) => panic!("cannot run {program} ({e}): install acpica-tools (`cargo xtask deps` does it)"),
    };
    let log = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), log)
}

/// Disassembles one table with `iasl -d` and returns the .dsl text.
fn disassemble(dir: &Path, table: &AcpiTable) -> String {
    let stem = table.signature;
    let dat = dir.join(format!("{stem}.dat"));
    std::fs::write(&dat, &table.bytes).unwrap();
    let (success, log) = run_acpica("iasl", &["-d", dat.to_str().unwrap()], dir);
    assert!(success, "iasl -d {stem} failed:\n{log}");
    let complaints: Vec<&str> = log
        .lines()
        .filter(|line| ["error", "warning", "invalid", "mismatch"].iter().any(|w| line.to_lowercase().contains(w)))
        .collect();
    assert!(complaints.is_empty(), "iasl -d {stem} complained:\n{log}");
    std::fs::read_to_string(dir.join(format!("{stem}.dsl"))).unwrap()
}

/// Every table but the RSDP, disassembled, by signature.
fn disassemble_all(machine: &MachineDescription, test: &str) -> (AcpiTables, Vec<(&'static str, String)>) {
    let tables = AcpiTables::build(machine).unwrap();
    let dir = scratch_dir(test);
    let texts = tables.tables().iter().skip(1).map(|t| (t.signature, disassemble(&dir, t))).collect();
    let _ = std::fs::remove_dir_all(&dir);
    (tables, texts)
}

fn text_of<'a>(texts: &'a [(&'static str, String)], signature: &str) -> &'a str {
    &texts.iter().find(|(s, _)| *s == signature).unwrap_or_else(|| panic!("no {signature}")).1
}

/// The DSDT's `Device (...)` blocks by name (none are nested).
fn devices(dsdt: &str) -> Vec<(String, String)> {
    dsdt.split("Device (")
        .skip(1)
        .map(|block| {
            let name = block.split(')').next().unwrap().to_string();
            (name, block.to_string())
        })
        .collect()
}

fn device<'a>(devices: &'a [(String, String)], name: &str) -> &'a str {
    &devices.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no Device ({name}) in the DSDT")).1
}

#[test]
fn every_table_disassembles_cleanly() {
    let (_, texts) = disassemble_all(&machine_with_blk_net_console_and_rtc(), "clean");
    let signatures: Vec<_> = texts.iter().map(|(s, _)| *s).collect();
    assert_eq!(signatures, ["DSDT", "FACP", "APIC", "XSDT"]);
}

#[test]
fn dsdt_lists_the_virtio_slots_with_their_memory_and_interrupts() {
    let (_, texts) = disassemble_all(&machine_with_blk_net_console_and_rtc(), "virtio");
    let devices = devices(text_of(&texts, "DSDT"));
    let virtio: Vec<_> = devices.iter().filter(|(_, block)| block.contains("\"LNRO0005\"")).collect();
    assert_eq!(virtio.len(), 3, "one LNRO0005 per slot in use");
    for (name, base, gsi) in [
        ("VR00", "0xD0000000", "0x00000005"),
        ("VR01", "0xD0000200", "0x00000006"),
        ("VR02", "0xD0000400", "0x00000007"),
    ] {
        let block = device(&devices, name);
        assert!(block.contains(&format!("{base},         // Address Base")), "{name}:\n{block}");
        assert!(block.contains("0x00000200,         // Address Length"), "{name}:\n{block}");
        assert!(block.contains("Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive"), "{name}:\n{block}");
        assert!(block.contains(&format!("{gsi},")), "{name}:\n{block}");
        assert!(block.contains("Name (_CCA, One)"), "{name}:\n{block}");
    }
}

#[test]
fn dsdt_lists_com1_rtc_and_the_power_button_behind_the_ged() {
    let (_, texts) = disassemble_all(&machine_with_blk_net_console_and_rtc(), "legacy");
    let dsdt = text_of(&texts, "DSDT");
    let devices = devices(dsdt);

    let com1 = device(&devices, "COM1");
    assert!(com1.contains("EisaId (\"PNP0501\")"), "{com1}");
    assert!(com1.contains("0x03F8,             // Range Minimum") && com1.contains("{4}"), "{com1}");

    let rtc = device(&devices, "RTC");
    assert!(rtc.contains("EisaId (\"PNP0B00\")"), "{rtc}");
    assert!(rtc.contains("0x0070,             // Range Minimum") && rtc.contains("{8}"), "{rtc}");

    let ged = device(&devices, "GED");
    assert!(ged.contains("\"ACPI0013\""), "{ged}");
    assert!(ged.contains("0x00000010,"), "GSI 16:\n{ged}");
    assert!(ged.contains("OperationRegion (EREG, SystemMemory, 0xFEA00000, 0x04)"), "{ged}");
    assert!(ged.contains("Method (_EVT, 1, Serialized)"), "{ged}");
    assert!(ged.contains("If (((Local0 & 0x02) == 0x02))") && ged.contains("Notify (PWRB, 0x80)"), "{ged}");

    let power_button = device(&devices, "PWRB");
    assert!(power_button.contains("\"PNP0C0C\""), "{power_button}");

    assert!(dsdt.contains("Name (_S5, Package (0x04)"), "{dsdt}");
}

#[test]
fn dsdt_lists_the_keyboard_controller_of_device_i8042() {
    let mut machine = MachineDescription::microvm(1);
    machine.keyboard = Some(KeyboardController::microvm());
    let (_, texts) = disassemble_all(&machine, "i8042");
    let devices = devices(text_of(&texts, "DSDT"));
    let kbd = device(&devices, "KBD");
    assert!(kbd.contains("EisaId (\"PNP0303\")"), "{kbd}");
    assert!(kbd.contains("Name (_STA, 0x0F)"), "{kbd}");
    for port in ["0x0060", "0x0064"] {
        assert!(kbd.contains(&format!("{port},             // Range Minimum")), "{port}:\n{kbd}");
    }
    let irq = kbd.split("IRQNoFlags ()").nth(1).and_then(|rest| rest.split_whitespace().next());
    assert_eq!(irq, Some("{1}"), "IRQ 1:\n{kbd}");
}

#[test]
fn dsdt_leaves_out_what_the_machine_lacks() {
    let (_, texts) = disassemble_all(&MachineDescription::microvm(1), "bare");
    let names: Vec<_> = devices(text_of(&texts, "DSDT")).into_iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["GED", "PWRB"]);
}

#[test]
fn madt_lists_the_local_apics_the_ioapic_and_the_overrides() {
    let (_, texts) = disassemble_all(&machine_with_blk_net_console_and_rtc(), "madt");
    let madt = text_of(&texts, "APIC");
    assert_eq!(madt.matches("[Processor Local APIC]").count(), 2, "{madt}");
    for id in ["00", "01"] {
        assert!(madt.contains(&format!("Local Apic ID : {id}")), "{madt}");
    }
    assert!(madt.contains("Local Apic Address : FEE00000"), "{madt}");
    assert!(madt.contains("PC-AT Compatibility : 1"), "{madt}");
    assert_eq!(madt.matches("[I/O APIC]").count(), 1, "{madt}");
    assert!(madt.contains("Address : FEC00000"), "{madt}");
    assert_eq!(madt.matches("[Interrupt Source Override]").count(), 1, "IRQ 0 -> GSI 2 only:\n{madt}");
    assert!(madt.contains("Source : 00") && madt.contains("Interrupt : 00000002"), "{madt}");
    assert!(madt.contains("[Local APIC NMI]") && madt.contains("Interrupt Input LINT : 01"), "{madt}");
}

#[test]
fn fadt_and_xsdt_point_where_the_tables_are() {
    let (tables, texts) = disassemble_all(&machine_with_blk_net_console_and_rtc(), "pointers");
    let address_of = |sig: &str| tables.tables().iter().find(|t| t.signature == sig).unwrap().address;

    let fadt = text_of(&texts, "FACP");
    assert!(fadt.contains("Hardware Reduced (V5) : 1"), "{fadt}");
    assert!(fadt.contains("Reset Register Supported (V2) : 1"), "{fadt}");
    assert!(fadt.contains(&format!("DSDT Address : {:016X}", address_of("DSDT"))), "{fadt}");
    assert!(fadt.contains("Address : 00000000FEA00200"), "sleep control:\n{fadt}");
    assert!(fadt.contains("Address : 00000000FEA00201"), "sleep status:\n{fadt}");
    assert!(fadt.contains("Address : 00000000FEA00202") && fadt.contains("Value to cause reset : 42"), "{fadt}");
    assert!(fadt.contains("CMOS RTC Not Present (V5) : 0"), "rtc=on:\n{fadt}");

    let xsdt = text_of(&texts, "XSDT");
    assert!(xsdt.contains(&format!("ACPI Table Address   0 : {:016X}", address_of("FACP"))), "{xsdt}");
    assert!(xsdt.contains(&format!("ACPI Table Address   1 : {:016X}", address_of("APIC"))), "{xsdt}");
}

#[test]
fn dsdt_methods_and_objects_evaluate_in_acpiexec() {
    let tables = AcpiTables::build(&machine_with_blk_net_console_and_rtc()).unwrap();
    let dsdt = tables.tables().iter().find(|t| t.signature == "DSDT").unwrap();
    let dir = scratch_dir("acpiexec");
    std::fs::write(dir.join("DSDT.dat"), &dsdt.bytes).unwrap();
    // acpiexec backs SystemMemory regions with zeroed memory: _EVT reads an
    // empty selector and notifies nothing, but runs every opcode up to the If.
    let commands = r"evaluate \_SB.GED._EVT 0; evaluate \_S5; evaluate \_SB.VR02._CRS; evaluate \_SB.COM1._STA";
    let (success, log) = run_acpica("acpiexec", &["-b", commands, "DSDT.dat"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(success, "acpiexec failed:\n{log}");
    assert!(!log.contains("AE_") && !log.to_lowercase().contains("error"), "acpiexec reported a problem:\n{log}");
    assert!(log.contains(r"No object was returned from evaluation of \_SB.GED._EVT"), "{log}");
    assert!(log.contains("[Package] Contains 4 Elements:\n    [Integer] = 0000000000000005"), "_S5:\n{log}");
    assert!(log.contains(r"Evaluation of \_SB.VR02._CRS returned object"), "{log}");
}

#[test]
fn dsdt_lists_the_vm_generation_id_device_and_its_address() {
    let mut machine = MachineDescription::microvm(1);
    machine.vmgenid = Some(0xfe000);
    let (tables, texts) = disassemble_all(&machine, "vmgenid");
    let dsdt = text_of(&texts, "DSDT");
    let devices = devices(dsdt);
    let vgen = device(&devices, "VGEN");
    // Linux's vmgenid driver matches the _CID; QEMU's guests know the _HID.
    for name in ["Name (_HID, \"QEMUVGID\")", "Name (_CID, \"VM_GEN_COUNTER\")", "Name (_DDN, \"VM_GEN_COUNTER\")"] {
        assert!(vgen.contains(name), "{name}:\n{vgen}");
    }
    assert!(vgen.contains("Method (ADDR, 0, NotSerialized)"), "{vgen}");
    let ged = device(&devices, "GED");
    assert!(ged.contains("If (((Local0 & 0x10) == 0x10))") && ged.contains("Notify (VGEN, 0x80)"), "{ged}");

    // ADDR returns the low and the high half of the address, as integers.
    let dsdt_table = tables.tables().iter().find(|t| t.signature == "DSDT").unwrap();
    let dir = scratch_dir("vmgenid-exec");
    std::fs::write(dir.join("DSDT.dat"), &dsdt_table.bytes).unwrap();
    let (success, log) =
        run_acpica("acpiexec", &["-b", r"evaluate \_SB.VGEN.ADDR; evaluate \_SB.GED._EVT 0", "DSDT.dat"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(success, "acpiexec failed:\n{log}");
    assert!(!log.contains("AE_") && !log.to_lowercase().contains("error"), "acpiexec reported a problem:\n{log}");
    assert!(
        log.contains(
            "[Package] Contains 2 Elements:\n    [Integer] = 00000000000FE000\n    [Integer] = 0000000000000000"
        ),
        "ADDR:\n{log}"
    );
}

#[test]
fn without_vmgenid_the_ged_notifies_only_the_power_button() {
    let (_, texts) = disassemble_all(&MachineDescription::microvm(1), "no-vmgenid");
    assert!(!text_of(&texts, "DSDT").contains("VGEN"));
}
