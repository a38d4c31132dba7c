//! `-netdev user` against the real passt, with this test as the guest: the
//! options microvm's parser translates are handed to passt exactly as the
//! VMM does (`passt::spawn`), and the test speaks Ethernet frames on the
//! socket: DHCP gets QEMU's addresses, a host port forward arrives as a TCP
//! SYN for the guest, and a guest SYN to the gateway reaches a host server.
//! A real Linux guest does the same in the rig (xtask/tests/netuser.rs).
//! Then microvm itself: passt runs as its child and goes with it, and a
//! missing passt is one line.

mod common;

use common::*;
use devices::virtio::net::{passt, Backend};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use vmm::config::{DeviceConfig, NetBackend};

const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const HDR: usize = 12;

/// The passt options microvm gives for `netdev`.
fn passt_args(netdev: &str) -> Vec<String> {
    let args = ["-kernel", "k", "-netdev", netdev, "-device", "virtio-net-device,netdev=n"];
    let Ok(cli::args::Command::Run(launch)) = cli::args::parse(args.iter().map(|s| s.to_string())) else {
        panic!("{netdev} does not parse");
    };
    match &launch.vm.devices[..] {
        [DeviceConfig::Net(n)] => match &n.backend {
            NetBackend::User { passt_args } => passt_args.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

fn checksum(data: &[u8], mut sum: u32) -> u16 {
    for pair in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet + IPv4 packet from the guest carrying `proto`'s `payload`.
fn ipv4_frame(dst_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; HDR];
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
    ip[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let sum = checksum(&ip, 0);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(payload);
    f
}

/// TCP or UDP with its pseudo-header checksum at `sum_at`.
fn with_l4_checksum(mut seg: Vec<u8>, src: Ipv4Addr, dst: Ipv4Addr, proto: u8, sum_at: usize) -> Vec<u8> {
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, proto]);
    pseudo.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(&seg);
    let sum = checksum(&pseudo, 0);
    seg[sum_at..sum_at + 2].copy_from_slice(&sum.to_be_bytes());
    seg
}

fn dhcp_discover() -> Vec<u8> {
    let mut bootp = vec![0u8; 240];
    bootp[..4].copy_from_slice(&[1, 1, 6, 0]);
    bootp[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    bootp[28..34].copy_from_slice(&GUEST_MAC);
    bootp[236..240].copy_from_slice(&[99, 130, 83, 99]);
    bootp.extend_from_slice(&[53, 1, 1, 55, 3, 1, 3, 6, 255]);
    let mut udp = vec![0, 68, 0, 67, 0, 0, 0, 0];
    udp[4..6].copy_from_slice(&((8 + bootp.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&bootp);
    let (src, dst) = (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST);
    ipv4_frame([0xff; 6], src, dst, 17, &with_l4_checksum(udp, src, dst, 17, 6))
}

fn tcp_syn(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    with_l4_checksum(tcp, src, dst, 6, 16)
}

/// Reads frames from passt until `want` picks one (or 10 s pass).
fn wait_frame<T>(socket: &mut Backend, mut want: impl FnMut(&[u8]) -> Option<T>) -> T {
    let mut buf = vec![0u8; 70_000];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match socket.read(&mut buf) {
            Ok(n) => {
                if let Some(found) = want(&buf[HDR..n]) {
                    return found;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("reading from passt: {e}"),
        }
    }
    panic!("passt sent no such frame in 10 s");
}

/// (source IP, destination IP, protocol, L4 bytes) of an IPv4 frame.
fn ipv4(frame: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u8, &[u8])> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0xf) * 4;
    let addr = |at: usize| Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]);
    Some((addr(12), addr(16), ip[9], &ip[ihl..]))
}

/// The DHCP options of a BOOTP reply as (code, value) pairs.
fn dhcp_options(bootp: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 240;
    while i + 1 < bootp.len() && bootp[i] != 255 {
        let (code, len) = (bootp[i], usize::from(bootp[i + 1]));
        out.push((code, bootp[i + 2..i + 2 + len].to_vec()));
        i += 2 + len;
    }
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn passt_gives_qemus_addresses_forwards_host_ports_and_maps_the_gateway_to_the_host() {
    let fwd_port = free_port();
    let args = passt_args(&format!("user,id=n,hostfwd=tcp:127.0.0.1:{fwd_port}-:22,ipv6=off,dns=10.0.2.3"));
    let mut socket = Backend::Stream(passt::spawn(&args, "test").expect("passt (apt install passt)").socket);
    let guest = Ipv4Addr::new(10, 0, 2, 15);
    let gateway = Ipv4Addr::new(10, 0, 2, 2);

    // DHCP: the guest's address, the router and (dns= given) the DNS server of QEMU's user network.
    socket.write(&dhcp_discover()).unwrap();
    let (yiaddr, options, gw_mac) = wait_frame(&mut socket, |f| {
        let (_, _, proto, udp) = ipv4(f)?;
        (proto == 17 && udp[0..4] == [0, 67, 0, 68]).then(|| {
            let bootp = &udp[8..];
            let mac: [u8; 6] = f[6..12].try_into().unwrap();
            (Ipv4Addr::new(bootp[16], bootp[17], bootp[18], bootp[19]), dhcp_options(bootp), mac)
        })
    });
    assert_eq!(yiaddr, guest);
    assert!(options.contains(&(3, gateway.octets().to_vec())), "router option: {options:?}");
    assert!(options.contains(&(6, vec![10, 0, 2, 3])), "DNS option: {options:?}");
    assert!(options.contains(&(1, vec![255, 255, 255, 0])), "netmask option: {options:?}");

    // hostfwd: a host client's connection arrives as a SYN for the guest's port 22.
    let client = std::thread::spawn(move || TcpStream::connect(("127.0.0.1", fwd_port)).map(drop));
    let (dst, dport) = wait_frame(&mut socket, |f| {
        let (_, dst, proto, tcp) = ipv4(f)?;
        (proto == 6 && tcp[13] & 0x02 != 0).then(|| (dst, u16::from_be_bytes([tcp[2], tcp[3]])))
    });
    assert_eq!((dst, dport), (guest, 22));
    client.join().unwrap().unwrap();

    // The guest reaches a host server through the gateway address (QEMU's 10.0.2.2).
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let syn = ipv4_frame(gw_mac, guest, gateway, 6, &tcp_syn(guest, gateway, 40000, port));
    socket.write(&syn).unwrap();
    server.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match server.accept() {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("the guest's SYN to {gateway}:{port} never reached the host: {e}"),
        }
    }
}

/// Processes whose command line starts with "passt" and whose parent is `ppid`.
fn passt_children(ppid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some(rest) = stat.rsplit(')').next() else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if fields.get(1) == Some(&ppid.to_string().as_str()) && cmdline.starts_with(b"passt") {
            out.push(pid);
        }
    }
    out
}

#[test]
fn microvm_runs_passt_as_its_child_and_passt_ends_with_it() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("netuser");
    let kernel = dir.file("spin.elf", &tiny_guest::spin_forever());
    let mut cmd = microvm();
    cmd.args(["-M", "microvm", "-m", "32", "-nodefaults", "-display", "none", "-kernel"]).arg(&kernel);
    cmd.args(["-netdev", "user,id=n", "-device", "virtio-net-device,netdev=n"]);
    let running = Running::spawn(cmd);
    let pid = running.child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut children = Vec::new();
    while children.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        children = passt_children(pid);
    }
    assert_eq!(children.len(), 1, "one passt child of microvm");
    let passt = children[0];
    running.signal(libc::SIGTERM);
    let (status, out) = running.wait(Duration::from_secs(10), Instant::now());
    assert!(status.is_some(), "microvm ended: {}", out.describe());
    // passt sees its socket close and quits (a zombie until init reaps it).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{passt}/stat")).ok();
        let gone =
            state.as_deref().is_none_or(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')));
        if gone {
            break;
        }
        assert!(Instant::now() < deadline, "passt {passt} still runs after microvm ended");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn without_passt_installed_the_error_is_one_line_saying_to_install_it() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("nopasst");
    let kernel = dir.file("spin.elf", &tiny_guest::spin_forever());
    let mut cmd = microvm();
    cmd.env("PATH", dir.path());
    cmd.args(["-M", "microvm", "-m", "32", "-nodefaults", "-display", "none", "-kernel"]).arg(&kernel);
    cmd.args(["-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0"]);
    let out = run(cmd);
    let error = assert_one_line_error(&out, &["n0"]);
    assert!(error.contains("needs passt, which is not installed (apt install passt"), "{error}");
}

/// A VM with a `-netdev user` NIC is saved and restored: the restoring command line
/// names the backend, as for a tap. With `-netdev user` again the restored VM gets a new
/// passt of its own; with `-netdev dgram` it sends to a host socket instead. The guest
/// (counting on its serial port) goes on where it stopped either way.
#[test]
fn a_snapshot_restores_with_the_backend_the_restoring_line_names() {
    use common::counter::{machine, wait_lines};
    use common::qmp::Qmp;
    use serde_json::json;
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("netuser-snap");
    let kernel = dir.file("counter.elf", &tiny_guest::counter_on_serial(10_000));
    let nic = |netdev: &str| {
        ["-netdev".to_string(), netdev.to_string(), "-device".into(), "virtio-net-device,netdev=n0".into()]
    };
    let user = nic("user,id=n0");
    let user: Vec<&str> = user.iter().map(String::as_str).collect();
    let (out0, qmp0, snap) = (dir.path().join("out0"), dir.path().join("qmp0"), dir.path().join("vm.snap"));
    let vm = Running::spawn(machine("microvm,legacy", &kernel, &out0, &qmp0, &user));
    let mut qmp = Qmp::connect(&qmp0);
    wait_lines(&out0, 3);
    qmp.execute("stop", json!({})).unwrap();
    qmp.execute("migrate", json!({ "uri": format!("file:{}", snap.display()) })).unwrap();
    qmp.execute("quit", json!({})).unwrap();
    let (status, output) = vm.wait(Duration::from_secs(10), Instant::now());
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", output.describe());
    let saved = std::fs::read_to_string(&out0).unwrap();

    let peer = dir.path().join("peer.sock");
    let _peer = std::os::unix::net::UnixDatagram::bind(&peer).unwrap();
    let dgram = nic(&format!("dgram,id=n0,remote.type=unix,remote.path={}", peer.display()));
    let dgram: Vec<&str> = dgram.iter().map(String::as_str).collect();
    for (name, netdev) in [("user", &user), ("dgram", &dgram)] {
        let (out, sock) = (dir.path().join(format!("out-{name}")), dir.path().join(format!("qmp-{name}")));
        let mut args = netdev.to_vec();
        let incoming = format!("file:{}", snap.display());
        args.extend(["-incoming", &incoming]);
        let vm = Running::spawn(machine("microvm,legacy", &kernel, &out, &sock, &args));
        let mut qmp = Qmp::connect(&sock);
        wait_lines(&out, 2);
        // The saved output and the restored one, joined (the save may fall mid-line).
        let text = saved.clone() + &std::fs::read_to_string(&out).unwrap();
        let complete = &text[..text.rfind('\n').unwrap()];
        let counts: Vec<u64> = complete.lines().map(|l| l.parse().unwrap()).collect();
        assert!(counts.windows(2).all(|w| w[1] == w[0] + 1), "{name}: the count goes on: {counts:?}");
        let passts = passt_children(vm.child.id()).len();
        assert_eq!(passts, usize::from(name == "user"), "{name}: passt children");
        qmp.execute("quit", json!({})).unwrap();
        let (status, output) = vm.wait(Duration::from_secs(10), Instant::now());
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{name}: {}", output.describe());
    }
}
