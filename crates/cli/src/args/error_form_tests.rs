//! The parser's errors as a user sees them: each is one line without control characters,
//! whatever the argument vector, and no argument vector makes the parser panic.

use super::test_util::*;
use super::*;

#[test]
fn every_error_is_one_line() {
    let samples = [
        err(&["-foo\nbar"]),
        err(&["bad\targ"]),
        err(&["-m", "1\n2"]),
        err(&["-M", "pc\r\n"]),
        err(&["-M", "microvm,\u{1b}[2J=1"]),
        err(&["-smp", "99\n"]),
        err(&["-smp", "2,\nfoo=1"]),
        err(&["-smp", "2,\rfoo"]),
        err(&["-cpu", "\u{7}"]),
        err(&["-serial", "\n"]),
        err_full(&[]),
        err(&["-m"]),
        err(&["-device", "x"]),
        err(&["-device", "virtio-blk-device,drive=\n"]),
        err(&["-device", "virtio-net-device,netdev=\u{1b}[2J"]),
        err(&["-device", "virtconsole,chardev=c,bus=\r.0"]),
        err(&["-device", "virtio-rng-device,rng=\t"]),
        err(&["-drive", "id=d\n,file=f"]),
        err(&["-netdev", "tap,id=n,ifname=a\nb"]),
        err(&["-chardev", "\n,id=c"]),
        err(&["-object", "rng-random,id=r,filename=\n"]),
        err(&["-nic", "user\n"]),
        err(&["-M", "microvm,isa-serial=off", "-serial", "stdio"]),
        err(&["-m", "1\n"]),
        err(&["-m", "999999T"]),
    ];
    for e in samples {
        let s = e.to_string();
        assert!(!s.contains(char::is_control), "{s:?}");
        assert!(!s.is_empty());
    }
}

/// Throws many odd argument vectors at the parser: it must never panic,
/// and every error must be one line without control characters.
#[test]
fn never_panics() {
    const TOKENS: &[&str] = &[
        "-M",
        "-machine",
        "--machine",
        "-m",
        "--m",
        "-smp",
        "-kernel",
        "-append",
        "-initrd",
        "-serial",
        "-nographic",
        "-nodefaults",
        "-no-user-config",
        "-enable-kvm",
        "-accel",
        "-cpu",
        "-no-reboot",
        "-display",
        "-name",
        "--report-start-time",
        "-h",
        "-version",
        "-device",
        "-drive",
        "-netdev",
        "-chardev",
        "-object",
        "-nic",
        "--device",
        "virtio-blk-device,drive=d",
        "virtio-blk-device,drive=",
        "virtio-net-device,netdev=n",
        "virtio-net-device,netdev=n,mac=52:54:00:12:34:56",
        "mac=ff:ff:ff:ff:ff:f",
        "virtio-serial-device",
        "virtio-serial-device,id=s",
        "virtconsole,chardev=c",
        "virtconsole,chardev=c,bus=s.0",
        "virtio-rng-device",
        "virtio-rng-device,rng=r",
        "virtio-blk-pci",
        "virtserialport",
        "id=d,file=f,format=raw,if=none",
        "id=d,file=f,if=none,readonly,cache=none",
        "id=e,file=f",
        "format=qcow2",
        "if=virtio",
        "tap,id=n,script=no,downscript=no",
        "tap,id=n,ifname=tap%d",
        "ifname=",
        "user,id=n",
        "pty,id=c,server",
        "stdio,id=c",
        "stdio,id=c,signal=off",
        "file,id=c,path=/tmp/x",
        "socket,id=c,path=/s,server,nowait",
        "socket,id=c,path=/s,wait",
        "rng-random,id=r,filename=/dev/urandom",
        "rng-builtin,id=r",
        "memory-backend-ram,id=m",
        "id=",
        "id=1",
        "no",
        "noserver",
        "drive=\u{0}",
        "chardev=\n",
        "microvm",
        "microvm,legacy",
        "microvm,isa-serial=off",
        "isa-serial=on",
        "pit=off",
        "acpi=on",
        "512m",
        "1G",
        "0",
        "16",
        "15",
        "1.5G",
        "1T",
        "2T",
        "18446744073709551616",
        "99999999999999999999999999999999999999999E",
        "0.999999999999999999999999E",
        "size=",
        "=",
        ",",
        ",,",
        "=,=",
        "a=b=c",
        "2",
        "33",
        "cpus=2,maxcpus=2",
        "sockets=0",
        "4,sockets=2,cores=2,threads=1",
        "stdio",
        "none",
        "pty",
        "kvm",
        "host",
        "",
        "-",
        "--",
        "---",
        "é",
        "\u{0}",
        "\n",
        "💥",
        "1\u{301}G",
        "vmlinux",
        "1.",
        ".",
        "1..2G",
        "K",
        "kk",
        "1KK",
        "maxcpus=",
        "type=",
        "legacy=",
        "microvm,,",
    ];
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for _ in 0..50_000 {
        let len = (next() % 8) as usize;
        let mut v = Vec::with_capacity(len + 2);
        if next() % 2 == 0 {
            v.extend(args(&["-kernel", "k"]));
        }
        for _ in 0..len {
            let t = TOKENS[(next() % TOKENS.len() as u64) as usize];
            // Sometimes glue two tokens together to make new ones.
            if next() % 5 == 0 {
                let u = TOKENS[(next() % TOKENS.len() as u64) as usize];
                v.push(format!("{t}{u}"));
            } else {
                v.push(t.to_owned());
            }
        }
        if let Err(e) = parse(v.clone()) {
            let s = e.to_string();
            assert!(!s.contains(char::is_control) && !s.is_empty(), "{v:?} → {s:?}");
        }
    }
}
