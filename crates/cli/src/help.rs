//! The `-help` text. Kept next to the parser (it is a submodule of `args`);
//! a unit test in `args.rs` checks it names every option and the limits.

/// Text printed for `-h`, `-help` and `--help`.
pub fn help_text() -> &'static str {
    HELP
}

const HELP: &str = "\
Usage: microvm -kernel PATH [options]

A minimal KVM virtual machine monitor implementing QEMU's microvm machine
type. The command line follows QEMU's: single-dash options (the two-dash
spelling, e.g. --m, works too), a value is always the next argument, and
when an option is repeated the last one wins (-M and -m merge properties).

Machine:
  -M, -machine microvm[,prop=value...]
                 The only machine type (also the default without -M).
                 Properties (booleans: on|off, yes|no, true|false):
      legacy     Legacy mode: add the ISA 16550A serial port (COM1, 0x3f8,
                 IRQ 4). Same as isa-serial=on.
      isa-serial=on|off
                 Legacy mode on or off. Default: on only if -serial is given.
      pit=on|off In-kernel i8254 PIT (default on).
      auto-kernel-cmdline=on|off
                 Append virtio_mmio.device= entries for the virtio devices to
                 the kernel command line (default on).
      acpi=off|auto
                 Accepted; microvm never has ACPI, so auto means off.
                 acpi=on is an error.
      rtc=on|off|auto
                 CMOS real-time clock (MC146818) on ports 0x70-0x71, IRQ 8:
                 the guest gets rtc0, and distribution kernels skip a slow
                 probe of absent hardware. Default off (auto = off, as in
                 QEMU's microvm under KVM).
      pic=, x-option-roms=, ioapic2=
                 Accepted with no effect: KVM's in-kernel irqchip always has
                 the PIC, there are no option ROMs, there is one IOAPIC.
      accel=kvm, kernel-irqchip=on
                 Accepted with no effect.
      dump-mtree Build the VM, print every I/O port range and MMIO region
                 the guest can reach (QEMU's `info mtree -f` layout, with
                 the owner: kvm or microvm) and exit without running it.
  -m [size=]SIZE Guest RAM (default 128M). A plain number is MiB; suffixes
                 B, K, M, G, T (either case), e.g. 512M, 1.5G. Range 16M..1T;
                 rounded up to whole 4 KiB pages. No slots=/maxmem=.
  -smp [cpus=]N[,sockets=S][,dies=D][,clusters=C][,cores=C][,threads=T][,maxcpus=N]
                 Number of vCPUs, 1..32 (default 1). Topology keys are checked
                 for consistency with N and otherwise ignored; maxcpus, if
                 given, must equal N (no CPU hotplug).
  -cpu host|max[,features...]
                 The guest always sees the host CPU as KVM exposes it;
                 feature flags are ignored.
  -accel kvm, -enable-kvm
                 KVM is always used; other accelerators are errors.

Boot (there is no firmware: microvm loads the kernel itself):
  -kernel PATH   Required. ELF vmlinux with a PVH note, or a bzImage.
  -append STRING Kernel command line.
  -initrd PATH   Initial ramdisk.

Serial port (legacy mode only):
  -serial stdio  Connect the 16550A to stdin/stdout. Implies legacy mode.
  -serial none   The 16550A exists but is connected to nothing. Implies
                 legacy mode unless isa-serial=off.
                 Without -serial, a legacy-mode port goes to stdio, or to
                 nothing with -nodefaults (QEMU drops its default serial).
                 -serial stdio with isa-serial=off is an error (there is no
                 port to connect). Other backends (pty, file:, tcp:, unix:,
                 mon:stdio, ...) are not supported; stdio may be given once.
  -nodefaults    See -serial.
  -nographic, -display none
                 Accepted: microvm has no display (other -display values are
                 errors).

Devices (virtio-mmio, one slot per -device, in command-line order):
  Devices find their backends by id, defined before or after them. Each
  backend serves one device (rng objects may be shared); a backend no
  device uses is checked and ignored. Ids are a letter then letters,
  digits, '-', '.', '_', unique per option. Booleans also have QEMU's
  short forms: readonly = readonly=on, nowait = wait=off.
  -drive id=ID,file=PATH[,format=raw][,if=none][,readonly=on|off][,cache=MODE]
                 A raw disk image for virtio-blk-device. format= can only be
                 raw (also the default: nothing is probed); if= can only be
                 none (microvm has no IDE/SCSI/PCI bus); a drive without
                 if=none must be used by a device. read-only= is a synonym of
                 readonly=. cache=writeback (default), writethrough, none,
                 directsync or unsafe. Accepted, no effect: media=disk,
                 aio=threads|native|io_uring, discard=unmap|ignore,
                 snapshot=off.
  -device virtio-blk-device,drive=ID[,id=DEVID]
                 A disk (/dev/vdX); its serial is the drive id (no serial=).
  -netdev tap,id=ID[,ifname=NAME][,script=no][,downscript=no][,vhost=off]
                 A tap backend. Without ifname= (or with a %d in it) the
                 kernel creates one named tapN. microvm never runs scripts:
                 script= and downscript= can only be no, so set the tap up
                 beforehand. Also accepted: queues=1, vnet_hdr=on. Other
                 -netdev types (user, bridge, socket, ...) are errors.
  -device virtio-net-device,netdev=ID[,mac=52:54:00:12:34:56][,id=DEVID]
                 A NIC. mac= is six hex octets (':' or '-'), unicast; without
                 it a locally administered MAC is picked.
  -chardev stdio,id=ID[,signal=on|off]
                 stdin/stdout. Only one of -chardev stdio and -serial stdio
                 may be given; an implicit legacy-mode serial port (no
                 -serial) then goes to nothing.
  -chardev pty,id=ID
                 A new pseudo-terminal; its path is printed at start-up.
                 server/wait are accepted and ignored, as in QEMU.
  -chardev file,id=ID,path=PATH[,append=on|off]
                 Output to a file; no input.
  -chardev socket,id=ID,path=PATH[,server=on|off][,wait=on|off]
                 A Unix socket, listening with server=on (then by default
                 waiting for a client before the VM starts; wait=off does
                 not) or connecting to PATH. A console cannot use a TCP or
                 fd= socket (see -mon).
                 Other backends (null, vc, ...) are errors.
  -device virtio-serial-device[,id=DEVID]
  -device virtconsole,chardev=ID[,bus=DEVID.0][,name=NAME][,id=ID]
                 A console (hvcN): each virtio-serial-device is one slot and
                 carries exactly one virtconsole, which must come after it
                 (it goes to the first one without a console, or the one
                 bus= names). virtserialport is not supported.
  -object rng-random,id=ID[,filename=/dev/urandom|/dev/random]
  -object rng-builtin,id=ID
                 Entropy backends for rng=; the only -object types.
  -device virtio-rng-device[,rng=ID][,id=DEVID]
                 An entropy source; it always draws from getrandom(2).
  -nic none      Accepted (no NIC). Other -nic forms are errors: use -netdev
                 with -device virtio-net-device. QEMU's PCI names
                 (virtio-blk-pci, virtio-net, ...) are errors too: microvm
                 has no PCI bus.

Management:
  -qmp unix:PATH[,server=on|off][,wait=on|off]
  -qmp tcp:[HOST]:PORT[,server=on|off][,wait=on|off]
  -qmp stdio, -qmp chardev:ID
                 A QMP monitor (may be given several times). As in QEMU, a
                 socket connects to PATH (or HOST:PORT) unless server=on; a
                 server waits for its first client before the VM starts
                 unless wait=off (wait= without server=on is an error). An
                 empty HOST is every address for a server, localhost for a
                 client. unix:path=PATH works too; short forms: server,
                 nowait. Other backends are errors.
  -qmp-pretty SPEC
                 Same, with indented JSON replies.
  -chardev socket,id=ID,host=HOST,port=PORT[,server=on|off][,wait=on|off]
  -chardev socket,id=ID,fd=N
                 TCP and inherited-fd sockets (fd=N: an already connected
                 stream socket, as QEMU's Python test harness passes); only a
                 monitor can use them.
  -mon [chardev=]ID,mode=control[,pretty=on|off]
                 A QMP monitor on a -chardev (stdio or socket) that no device
                 uses. mode=readline (QEMU's default: the human monitor) is
                 not supported yet, so mode=control is required.
  -S             Set the VM up, then wait with the vCPUs stopped until a
                 monitor sends cont.
  -name [guest=]NAME[,debug-threads=on|off][,process=NAME]
                 The VM's name (query-name). debug-threads=on names the vCPU
                 threads as QEMU does (CPU 0/KVM); process= is accepted with
                 no effect.
  -uuid UUID     The VM's UUID (query-uuid): 8-4-4-4-12 hex digits.
  -daemonize     Detach from the terminal once the VM is set up.
  -pidfile PATH  Write the process id to PATH.

Accepted for QEMU compatibility, no effect:
  -no-user-config  There are no config files.
  -no-reboot       A guest reset always ends microvm.

Other:
  --report-start-time, -report-start-time
                 Print the time from process start to the first KVM_RUN on
                 stderr (also with MICROVM_REPORT_START_TIME=1).
  -trace-boot    Boot-time breakdown on stderr when the VM ends: VMM init end
                 (first KVM_RUN), linux_start_kernel and linux_start_user
                 (the guest writes 6 and 7 to port 0xf4, which exists only
                 with this option), guest exit; ms since process start.
  -trace-boot-json FILE
                 Same, and the figures as JSON in FILE.
  -h, -help, --help        Print this help and exit.
  -version, --version      Print the version and exit.
";
