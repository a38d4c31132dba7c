//! The socket netdevs `-netdev stream|dgram` (QEMU 7.2+'s spelling) and
//! `-netdev user`, which microvm hands to passt: each property described
//! once here, and its parser. `-netdev tap` is in `backends.rs`.

use std::net::Ipv4Addr;

use vmm::config::{NetBackend, SocketAddress};

use super::keyval::Setting;
use super::schema::Value::{Bool, OneOf, Text};
use super::schema::{prop, KindDesc, PropDesc, ID};
use super::{invalid, unhandled, ArgsError};

/// The option, as messages name it.
pub(super) const NETDEV: &str = "-netdev";

const NETDEV_ID: PropDesc = PropDesc { help: "Required; -device virtio-net-device,netdev=ID refers to it.", ..ID };
/// QEMU takes vhost= on these too (and ignores it); on is an error here.
const VHOST_OFF: PropDesc = prop("vhost", Bool, Some("off"), "Only off: vhost-net moves frames to a tap only.");

/// `addr.*`, `local.*`, `remote.*`: QEMU's SocketAddress in dotted keys.
macro_rules! socket_props {
    ($p:literal, $what:literal) => {
        [
            prop(concat!($p, ".type"), OneOf(&["unix", "inet"]), None, concat!($what, ": unix or inet (no fd).")),
            prop(concat!($p, ".path"), Text("PATH"), None, "With type=unix: the socket's path."),
            prop(concat!($p, ".host"), Text("HOST"), None, "With type=inet: the host name or address."),
            prop(concat!($p, ".port"), Text("PORT"), None, "With type=inet: the port."),
        ]
    };
}

const STREAM_ADDR: [PropDesc; 4] = socket_props!("addr", "The socket");
const LOCAL_ADDR: [PropDesc; 4] = socket_props!("local", "The address datagrams come from");
const REMOTE_ADDR: [PropDesc; 4] = socket_props!("remote", "Required; the peer datagrams go to");

const STREAM_PROPS: &[PropDesc] = &[
    NETDEV_ID,
    VHOST_OFF,
    prop(
        "server",
        Bool,
        Some("off"),
        "on: listen, and wait for one peer before the guest starts (QEMU accepts it while the guest runs); \
         off: connect.",
    ),
    STREAM_ADDR[0],
    STREAM_ADDR[1],
    STREAM_ADDR[2],
    STREAM_ADDR[3],
    prop("reconnect", OneOf(&["0"]), Some("0"), "Only 0: microvm connects once; if the peer goes, the link is down."),
];

const DGRAM_PROPS: &[PropDesc] = &[
    NETDEV_ID,
    VHOST_OFF,
    LOCAL_ADDR[0],
    LOCAL_ADDR[1],
    LOCAL_ADDR[2],
    LOCAL_ADDR[3],
    REMOTE_ADDR[0],
    REMOTE_ADDR[1],
    REMOTE_ADDR[2],
    REMOTE_ADDR[3],
];

const USER_PROPS: &[PropDesc] = &[
    NETDEV_ID,
    VHOST_OFF,
    prop("net", Text("ADDR[/MASK]"), Some("10.0.2.0/24"), "The guest's IPv4 network (passt -n)."),
    prop("host", Text("ADDR"), Some("net+2"), "The gateway; connections to it reach the host's loopback (passt -g)."),
    prop(
        "dhcpstart",
        Text("ADDR"),
        Some("net+15"),
        "The guest's address. passt hands out this one address, not a pool (passt -a).",
    ),
    prop(
        "dns",
        Text("ADDR"),
        None,
        "The DNS address the guest is given; passt forwards queries to it to the host's first resolver \
         (--dns-forward). Without it passt gives the host's resolvers, a loopback one (127.0.0.53) as the \
         gateway address (QEMU gives net+3). With a loopback host resolver, Debian 12's passt answers \
         forwarded queries from the gateway address, which resolvers drop: leave dns= out there.",
    ),
    prop("ipv4", Bool, Some("on"), "off: IPv6 only (passt -6)."),
    prop("ipv6", Bool, Some("on"), "off: IPv4 only (passt -4). With on, passt copies the host's IPv6 set-up."),
    prop(
        "hostfwd",
        Text("tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT"),
        None,
        "Repeatable: forward a host port to the guest (passt -t/-u). GUESTADDR can only be the guest's address.",
    ),
    prop("dnssearch", Text("DOMAIN"), None, "Repeatable: the DNS search list (passt -S)."),
    prop("domainname", Text("DOMAIN"), None, "Sent first in the DNS search list (passt has no DHCP domain name)."),
    prop("restrict", OneOf(&["off", "no"]), Some("off"), "Only off: passt cannot limit the guest to its forwards."),
];

/// The `-netdev` types this module parses.
pub(super) const STREAM: KindDesc = KindDesc {
    name: "stream",
    help: "QEMU's length-prefixed Ethernet frames on a Unix or TCP stream socket (what passt and other user-space \
           switches speak).",
    props: STREAM_PROPS,
};
pub(super) const DGRAM: KindDesc = KindDesc {
    name: "dgram",
    help: "One Ethernet frame per datagram on a Unix or UDP socket, to one peer (no multicast).",
    props: DGRAM_PROPS,
};
pub(super) const USER: KindDesc = KindDesc {
    name: "user",
    help: "User-mode networking without root: microvm starts passt (which must be installed) as a sandboxed child \
           process; QEMU's addresses (10.0.2.15, gateway .2), the host's DNS resolvers.",
    props: USER_PROPS,
};

/// Collects one socket address from its dotted keys.
#[derive(Default)]
struct AddrParts<'a> {
    kind: Option<&'a str>,
    path: Option<&'a Setting>,
    host: Option<&'a Setting>,
    port: Option<&'a Setting>,
}

impl<'a> AddrParts<'a> {
    /// Takes `s` if it is one of `prefix.*`; false if not.
    fn take(&mut self, prefix: &str, s: &'a Setting) -> bool {
        let Some(key) = s.name().strip_prefix(prefix).and_then(|k| k.strip_prefix('.')) else { return false };
        match key {
            "type" => self.kind = Some(&s.value),
            "path" => self.path = Some(s),
            "host" => self.host = Some(s),
            "port" => self.port = Some(s),
            _ => return false,
        }
        true
    }

    fn given(&self) -> bool {
        self.kind.is_some() || self.path.is_some() || self.host.is_some() || self.port.is_some()
    }

    fn finish(self, prefix: &str, value: &str) -> Result<SocketAddress, ArgsError> {
        match self.kind {
            Some("unix") => {
                if self.host.is_some() || self.port.is_some() {
                    return Err(invalid(NETDEV, value, format!("{prefix}.type=unix takes {prefix}.path only")));
                }
                let Some(path) = self.path else {
                    return Err(invalid(NETDEV, value, format!("{prefix}.type=unix needs {prefix}.path=")));
                };
                Ok(SocketAddress::Unix(path.path(NETDEV)?))
            }
            Some("inet") => {
                if self.path.is_some() {
                    return Err(invalid(NETDEV, value, format!("{prefix}.type=inet takes {prefix}.host and .port")));
                }
                let (Some(host), Some(port)) = (self.host, self.port) else {
                    return Err(invalid(
                        NETDEV,
                        value,
                        format!("{prefix}.type=inet needs {prefix}.host= and {prefix}.port="),
                    ));
                };
                let port = port.value.parse().map_err(|_| invalid(NETDEV, &port.text, "expected a port number"))?;
                Ok(SocketAddress::Inet { host: host.value.clone(), port })
            }
            Some(other) => Err(invalid(NETDEV, value, format!("{prefix}.type={other}: only unix and inet"))),
            None => Err(invalid(NETDEV, value, format!("{prefix}.type=unix|inet is required"))),
        }
    }
}

/// `-netdev stream,id=,server=on|off,addr.type=unix|inet,...`.
pub(super) fn stream(settings: Vec<Setting>, value: &str) -> Result<NetBackend, ArgsError> {
    let mut server = false;
    let mut addr = AddrParts::default();
    for s in &settings {
        match s.name() {
            "id" => {}
            "vhost" => vhost_off(s)?,
            "server" => server = s.on,
            "reconnect" if s.value == "0" => {}
            "reconnect" => {
                return Err(invalid(NETDEV, &s.text, "reconnect= is not supported: microvm connects once, at start"))
            }
            _ if addr.take("addr", s) => {}
            name => return Err(unhandled(NETDEV, name)),
        }
    }
    Ok(NetBackend::Stream { server, addr: addr.finish("addr", value)? })
}

/// `-netdev dgram,id=,remote.type=,...[,local.type=,...]`.
pub(super) fn dgram(settings: Vec<Setting>, value: &str) -> Result<NetBackend, ArgsError> {
    let (mut local, mut remote) = (AddrParts::default(), AddrParts::default());
    for s in &settings {
        match s.name() {
            "id" => {}
            "vhost" => vhost_off(s)?,
            _ if local.take("local", s) || remote.take("remote", s) => {}
            name => return Err(unhandled(NETDEV, name)),
        }
    }
    if !remote.given() {
        return Err(invalid(
            NETDEV,
            value,
            "remote.type= and its address are required: microvm sends to one peer (no multicast)",
        ));
    }
    let local = if local.given() { Some(local.finish("local", value)?) } else { None };
    Ok(NetBackend::Dgram { local, remote: remote.finish("remote", value)? })
}

/// `-netdev user,...`: QEMU's options as passt's.
pub(super) fn user(settings: Vec<Setting>, value: &str) -> Result<NetBackend, ArgsError> {
    let mut net = (Ipv4Addr::new(10, 0, 2, 0), 24u8);
    let (mut host, mut guest, mut dns) = (None, None, None);
    let (mut ipv4, mut ipv6) = (true, true);
    let mut forwards = Vec::new();
    let mut search = Vec::new();
    for s in &settings {
        match s.name() {
            "id" => {}
            "vhost" => vhost_off(s)?,
            "net" => net = parse_net(s)?,
            "host" => host = Some(parse_ipv4(s)?),
            "dhcpstart" => guest = Some(parse_ipv4(s)?),
            "dns" => dns = Some(parse_ipv4(s)?),
            "ipv4" => ipv4 = s.on,
            "ipv6" => ipv6 = s.on,
            "hostfwd" => forwards.push(s),
            "dnssearch" => search.push(s.value.clone()),
            "domainname" => search.insert(0, s.value.clone()),
            "restrict" if matches!(s.value.as_str(), "off" | "no") => {}
            "restrict" => {
                return Err(invalid(NETDEV, &s.text, "restrict=on is not supported: passt cannot confine the guest"))
            }
            name => return Err(unhandled(NETDEV, name)),
        }
    }
    if !ipv4 && !ipv6 {
        return Err(invalid(NETDEV, value, "ipv4=off and ipv6=off leave the guest no network"));
    }
    let (base, bits) = net;
    let nth = |n: u32| Ipv4Addr::from(u32::from(base) + n);
    let (host, guest) = (host.unwrap_or(nth(2)), guest.unwrap_or(nth(15)));
    for (name, addr) in [("host", Some(host)), ("dhcpstart", Some(guest)), ("dns", dns)] {
        let Some(addr) = addr else { continue };
        if mask(u32::from(addr), bits) != u32::from(base) {
            return Err(invalid(NETDEV, value, format!("{name}={addr} is outside net={base}/{bits}")));
        }
    }
    let mut args: Vec<String> = Vec::new();
    let mut arg = |a: &str, b: String| args.extend([a.to_string(), b]);
    if ipv4 {
        arg("--address", guest.to_string());
        arg("--netmask", bits.to_string());
        arg("--gateway", host.to_string());
        if let Some(dns) = dns {
            arg("--dns", dns.to_string());
            arg("--dns-forward", dns.to_string());
        }
    }
    if !search.is_empty() {
        arg("--search", search.join(" "));
    }
    for s in forwards {
        let (flag, spec) = hostfwd(s, guest)?;
        arg(flag, spec);
    }
    if !ipv6 {
        args.push("--ipv4-only".into());
    }
    if !ipv4 {
        args.push("--ipv6-only".into());
    }
    Ok(NetBackend::User { passt_args: args })
}

fn vhost_off(s: &Setting) -> Result<(), ArgsError> {
    if s.on {
        return Err(invalid(
            NETDEV,
            &s.text,
            "vhost=on needs -netdev tap: the kernel's vhost-net only moves frames to a tap",
        ));
    }
    Ok(())
}

fn mask(addr: u32, bits: u8) -> u32 {
    if bits == 0 {
        0
    } else {
        addr & (u32::MAX << (32 - u32::from(bits)))
    }
}

fn parse_ipv4(s: &Setting) -> Result<Ipv4Addr, ArgsError> {
    s.value.parse().map_err(|_| invalid(NETDEV, &s.text, "expected an IPv4 address"))
}

/// `ADDR[/BITS|/MASK]`, QEMU's `net=`; a bare address gets QEMU's /24.
fn parse_net(s: &Setting) -> Result<(Ipv4Addr, u8), ArgsError> {
    let bad = || invalid(NETDEV, &s.text, "expected ADDR[/BITS] or ADDR/MASK, e.g. 10.0.2.0/24");
    let (addr, bits) = match s.value.split_once('/') {
        None => (s.value.as_str(), 24),
        Some((addr, m)) => match m.parse::<u8>() {
            Ok(bits) if (8..=30).contains(&bits) => (addr, bits),
            Ok(_) => return Err(invalid(NETDEV, &s.text, "the prefix must be 8 to 30 bits")),
            Err(_) => {
                let m = u32::from(m.parse::<Ipv4Addr>().map_err(|_| bad())?);
                let bits = m.leading_ones() as u8;
                if m.count_ones() != u32::from(bits) || !(8..=30).contains(&bits) {
                    return Err(invalid(NETDEV, &s.text, "not a netmask of 8 to 30 bits"));
                }
                (addr, bits)
            }
        },
    };
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    Ok((Ipv4Addr::from(mask(u32::from(addr), bits)), bits))
}

/// `tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT` → passt's
/// `-t|-u [HOSTADDR/]HOSTPORT:GUESTPORT`.
fn hostfwd(s: &Setting, guest: Ipv4Addr) -> Result<(&'static str, String), ArgsError> {
    let bad = |why: &str| invalid(NETDEV, &s.text, why.to_string());
    let form = "expected hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT";
    let (proto, rest) = match s.value.split_once(':') {
        Some(("tcp" | "", rest)) => ("--tcp-ports", rest),
        Some(("udp", rest)) => ("--udp-ports", rest),
        _ => return Err(bad(form)),
    };
    let (host, guest_side) = rest.split_once('-').ok_or_else(|| bad(form))?;
    let (haddr, hport) = host.rsplit_once(':').ok_or_else(|| bad(form))?;
    let (gaddr, gport) = guest_side.rsplit_once(':').ok_or_else(|| bad(form))?;
    let port = |p: &str| p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| bad("ports are 1 to 65535"));
    let (hport, gport) = (port(hport)?, port(gport)?);
    if !gaddr.is_empty() && gaddr.parse::<Ipv4Addr>().ok() != Some(guest) {
        return Err(bad(&format!("passt forwards to the guest's one address ({guest}); leave GUESTADDR empty")));
    }
    let spec = if haddr.is_empty() {
        format!("{hport}:{gport}")
    } else {
        haddr.parse::<Ipv4Addr>().map_err(|_| bad("HOSTADDR must be an IPv4 address"))?;
        format!("{haddr}/{hport}:{gport}")
    };
    Ok((proto, spec))
}

#[cfg(test)]
mod tests;
