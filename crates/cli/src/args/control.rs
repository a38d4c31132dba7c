//! The control-plane options: `-qmp`, `-qmp-pretty`, `-mon`, `-name`, `-uuid`
//! (`-S`, `-daemonize` and `-pidfile` take no parsing beyond `args.rs`).
//!
//! QEMU's rules followed here:
//! - `-qmp SPEC` is QEMU's legacy chardev syntax (`qemu_chr_parse_compat`):
//!   `unix:PATH[,opts]` (the first element is `path`, so `unix:path=PATH` works
//!   too), `tcp:[HOST]:PORT[,opts]`, `stdio`, or `chardev:ID` naming a `-chardev`.
//! - Sockets (`-qmp` and `-chardev socket`) connect unless `server=on`; a server
//!   waits for its first client unless `wait=off`; `wait=` on a connecting
//!   socket is an error (QEMU's `qemu_chr_parse_socket` and its validation).
//! - `-mon [chardev=]ID[,mode=readline|control][,pretty=on|off]`: the mode
//!   defaults to readline, the human monitor, which microvm does not have.

use vmm::config::MonitorSocket;
use vmm::snapshot::ClockPolicy;

use super::keyval::settings;
use super::options::{MON_PROPS, NAME_PROPS, QMP_TCP_PROPS, QMP_UNIX_PROPS, RUN_WITH_PROPS, SANDBOX_PROPS};
use super::{invalid, unhandled, ArgsError};
use sandbox::jail::JailConfig;

/// A QMP monitor whose chardev (if it names one) is looked up in `finish`.
pub(super) struct Monitor {
    /// `-qmp`, `-mon` or `-monitor`, and its value, for messages.
    pub(super) option: &'static str,
    pub(super) value: String,
    pub(super) target: MonitorTarget,
    pub(super) pretty: bool,
    /// The human monitor (readline HMP) rather than QMP.
    pub(super) human: bool,
}

pub(super) enum MonitorTarget {
    /// `-qmp unix:...`, `tcp:...`, `stdio`.
    Socket(MonitorSocket),
    /// `-mon chardev=ID` or `-qmp chardev:ID`.
    Chardev(String),
}

const MON: &str = "-mon";

/// `-qmp SPEC` (or `-qmp-pretty SPEC`, `pretty`).
pub(super) fn parse_qmp(option: &'static str, value: &str, pretty: bool) -> Result<Monitor, ArgsError> {
    let target = if value == "stdio" {
        MonitorTarget::Socket(MonitorSocket::Stdio)
    } else if let Some(id) = value.strip_prefix("chardev:") {
        if id.is_empty() {
            return Err(invalid(option, value, "chardev: needs the id of a -chardev"));
        }
        MonitorTarget::Chardev(id.to_owned())
    } else if let Some(rest) = value.strip_prefix("unix:") {
        MonitorTarget::Socket(parse_unix(option, rest)?)
    } else if let Some(rest) = value.strip_prefix("tcp:") {
        MonitorTarget::Socket(parse_tcp(option, rest)?)
    } else {
        return Err(invalid(
            option,
            value,
            "unknown QMP backend; use unix:PATH,server=on,wait=off, tcp:HOST:PORT,server=on,wait=off, stdio \
             or chardev:ID",
        ));
    };
    Ok(Monitor { option, value: value.to_owned(), target, pretty, human: false })
}

/// `-monitor stdio|unix:...|tcp:...|chardev:ID|none`: a human monitor (QEMU's
/// legacy chardev syntax, as for `-qmp`); `none` gives none.
pub(super) fn parse_monitor(value: &str) -> Result<Option<Monitor>, ArgsError> {
    const MONITOR: &str = "-monitor";
    if value == "none" {
        return Ok(None);
    }
    let monitor = parse_qmp(MONITOR, value, false).map_err(|e| match e {
        ArgsError::InvalidValue { value, reason, .. } if reason.starts_with("unknown QMP backend") => invalid(
            MONITOR,
            &value,
            "unknown monitor backend; use stdio, unix:PATH,server=on,wait=off, tcp:HOST:PORT,server=on,wait=off, \
             chardev:ID or none",
        ),
        other => other,
    })?;
    Ok(Some(Monitor { human: true, ..monitor }))
}

/// `unix:` followed by `[path=]PATH[,server=on|off][,wait=on|off]`.
pub(super) fn parse_unix(option: &'static str, list: &str) -> Result<MonitorSocket, ArgsError> {
    let mut path = None;
    let mut server = None;
    let mut wait = None;
    for s in settings(option, list, Some("path"), QMP_UNIX_PROPS, "a unix: socket")? {
        match s.name() {
            "path" => path = Some(s.path(option)?),
            "server" => server = Some(s.on),
            "wait" => wait = Some((s.on, s.text)),
            name => return Err(unhandled(option, name)),
        }
    }
    let Some(path) = path else {
        return Err(invalid(option, list, "unix: needs a socket path, e.g. unix:/tmp/qmp.sock,server=on,wait=off"));
    };
    Ok(match socket_mode(option, server, wait)? {
        (true, wait) => MonitorSocket::UnixListen { path, wait },
        (false, _) => MonitorSocket::UnixConnect { path },
    })
}

/// `tcp:` followed by `[HOST]:PORT[,server=on|off][,wait=on|off]`.
pub(super) fn parse_tcp(option: &'static str, rest: &str) -> Result<MonitorSocket, ArgsError> {
    // QEMU splits the address at the first ':' and the first ',' after it.
    let Some((host, after_host)) = rest.split_once(':') else {
        return Err(invalid(option, rest, "tcp: needs HOST:PORT, e.g. tcp:localhost:4444,server=on,wait=off"));
    };
    let (port_text, list) = after_host.split_once(',').unwrap_or((after_host, ""));
    let port = parse_port(option, rest, port_text)?;
    let mut server = None;
    let mut wait = None;
    for s in settings(option, list, None, QMP_TCP_PROPS, "a tcp: socket")? {
        match s.name() {
            "server" => server = Some(s.on),
            "wait" => wait = Some((s.on, s.text)),
            name => return Err(unhandled(option, name)),
        }
    }
    let (server, wait) = socket_mode(option, server, wait)?;
    let host = tcp_host(host, server);
    Ok(if server { MonitorSocket::TcpListen { host, port, wait } } else { MonitorSocket::TcpConnect { host, port } })
}

/// A TCP port number; `shown` is the text the error message quotes.
pub(super) fn parse_port(option: &'static str, shown: &str, port: &str) -> Result<u16, ArgsError> {
    match port.parse::<u16>() {
        Ok(n) if n > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(invalid(option, shown, format!("bad port '{}': expected a number 1..65535", port.escape_debug()))),
    }
}

/// QEMU's empty host: all addresses for a server, the local host for a client.
pub(super) fn tcp_host(host: &str, server: bool) -> String {
    match (host, server) {
        ("", true) => "0.0.0.0".to_owned(),
        ("", false) => "localhost".to_owned(),
        (host, _) => host.to_owned(),
    }
}

/// `(server, wait)` from the `server=` and `wait=` given (`wait` with the
/// element as written, for the message).
pub(super) fn socket_mode(
    option: &'static str,
    server: Option<bool>,
    wait: Option<(bool, String)>,
) -> Result<(bool, bool), ArgsError> {
    let server = server.unwrap_or(false);
    match wait {
        Some((_, elem)) if !server => {
            Err(invalid(option, &elem, "wait= only applies to a listening socket (server=on)"))
        }
        Some((wait, _)) => Ok((server, wait)),
        // QEMU's default: a server waits for its first client.
        None => Ok((server, server)),
    }
}

/// `-mon [chardev=]ID[,mode=control][,pretty=on|off]`.
pub(super) fn parse_mon(value: &str) -> Result<Monitor, ArgsError> {
    let mut chardev = None;
    let mut control = None;
    let mut pretty = false;
    for s in settings(MON, value, Some("chardev"), MON_PROPS, MON)? {
        match s.name() {
            "chardev" => chardev = Some(s.reference(MON)?),
            "mode" => {
                control = Some(match s.value.as_str() {
                    "control" => true,
                    "readline" => false,
                    _ => {
                        return Err(invalid(
                            MON,
                            &s.text,
                            "unknown monitor mode; expected mode=readline or mode=control",
                        ))
                    }
                })
            }
            "pretty" => pretty = s.on,
            name => return Err(unhandled(MON, name)),
        }
    }
    let Some(chardev) = chardev else {
        return Err(invalid(MON, value, "chardev=ID is required (the id of a -chardev)"));
    };
    // QEMU's default mode is readline, the human monitor.
    let human = control != Some(true);
    Ok(Monitor { option: MON, value: value.to_owned(), target: MonitorTarget::Chardev(chardev), pretty, human })
}

/// What `-name` sets; `None` fields leave earlier `-name` values alone
/// (QEMU merges repeated `-name` options key by key).
#[derive(Default)]
pub(super) struct NameOptions {
    pub(super) guest: Option<String>,
    pub(super) debug_threads: Option<bool>,
}

/// `-name [guest=]NAME[,process=P][,debug-threads=on|off]`.
pub(super) fn parse_name(value: &str) -> Result<NameOptions, ArgsError> {
    const NAME: &str = "-name";
    let mut out = NameOptions::default();
    for s in settings(NAME, value, Some("guest"), NAME_PROPS, NAME)? {
        match s.name() {
            "guest" => out.guest = Some(s.value),
            "debug-threads" => out.debug_threads = Some(s.on),
            name => return Err(unhandled(NAME, name)),
        }
    }
    Ok(out)
}

/// `-sandbox on|off[,...]`: whether the seccomp filters are installed.
pub(super) fn parse_sandbox(value: &str) -> Result<bool, ArgsError> {
    const SANDBOX: &str = "-sandbox";
    let mut enable = None;
    for s in settings(SANDBOX, value, Some("enable"), SANDBOX_PROPS, SANDBOX)? {
        match s.name() {
            "enable" => enable = Some(s.on),
            // Described as accepted with no effect (the table says why).
            _ if s.desc.no_effect.is_some() => {}
            name => return Err(unhandled(SANDBOX, name)),
        }
    }
    enable.ok_or_else(|| invalid(SANDBOX, value, "expected on|off first"))
}

/// `-run-with [chroot=DIR][,user=USER[:GROUP]]`: later settings win, as with `-chroot`.
pub(super) fn parse_run_with(value: &str, jail: &mut JailConfig) -> Result<(), ArgsError> {
    const RUN_WITH: &str = "-run-with";
    for s in settings(RUN_WITH, value, None, RUN_WITH_PROPS, RUN_WITH)? {
        match s.name() {
            "chroot" if s.value.is_empty() => return Err(invalid(RUN_WITH, value, "empty chroot directory")),
            "chroot" => jail.chroot = Some(s.value.into()),
            "user" => jail.user = Some(parse_runas(RUN_WITH, s.value)?),
            _ if s.desc.no_effect.is_some() => {}
            name => return Err(unhandled(RUN_WITH, name)),
        }
    }
    Ok(())
}

/// `USER`, `USER:GROUP` or `UID:GID`; resolved when microvm starts.
pub(super) fn parse_runas(option: &'static str, value: String) -> Result<String, ArgsError> {
    if value.is_empty() || value.starts_with(':') || value.ends_with(':') || value.matches(':').count() > 1 {
        return Err(invalid(option, &value, "expected USER, USER:GROUP or UID:GID"));
    }
    Ok(value)
}

/// `-incoming file:PATH[,offset=N]`: the snapshot to restore; `None`: `defer` (QMP
/// `migrate-incoming` names it later). Network URIs are refused in one line (microvm
/// restores from files only).
pub(super) fn parse_incoming(value: &str) -> Result<Option<vmm::snapshot::SnapshotSource>, ArgsError> {
    if value == "defer" {
        return Ok(None);
    }
    // microvm's own suffix (QEMU has no clock choice on -incoming): the guest's clock
    // continues from the saved instant (the default, as QEMU), or catches up to the host's.
    let (uri, clock) = match value.rsplit_once(",clock=") {
        Some((uri, "continue")) => (uri, ClockPolicy::Continue),
        Some((uri, "realtime")) => (uri, ClockPolicy::CatchUp),
        Some((_, other)) => {
            return Err(invalid(
                "-incoming",
                value,
                format!("clock={other}: expected clock=continue or clock=realtime"),
            ))
        }
        None => (value, ClockPolicy::Continue),
    };
    let (path, offset) = vmm::snapshot::parse_file_uri(uri).map_err(|e| invalid("-incoming", value, e.to_string()))?;
    Ok(Some(vmm::snapshot::SnapshotSource { path, offset, memory: None, clock }))
}

/// `-uuid`: 8-4-4-4-12 hex digits (either case, as QEMU accepts); returned in
/// lower case, the canonical form `query-uuid` reports.
pub(super) fn parse_uuid(value: &str) -> Result<String, ArgsError> {
    let well_formed = value.len() == 36
        && value.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if !well_formed {
        return Err(invalid("-uuid", value, "expected a UUID such as 123e4567-e89b-12d3-a456-426614174000"));
    }
    Ok(value.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::super::{parse, Command, Launch};
    use super::*;
    use std::path::PathBuf;
    use vmm::config::{MonitorConfig, SerialConfig, VmConfig};

    fn launch(extra: &[&str]) -> Result<Launch, ArgsError> {
        let argv = ["-kernel", "vmlinux"].iter().chain(extra).map(|s| s.to_string());
        match parse(argv)? {
            Command::Run(launch) => Ok(launch),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    fn run(extra: &[&str]) -> VmConfig {
        launch(extra).unwrap_or_else(|e| panic!("{extra:?}: {e}")).vm
    }

    fn err(extra: &[&str]) -> ArgsError {
        launch(extra).expect_err("expected an error")
    }

    /// The error names `option`, and its message contains `text`.
    fn assert_err(e: ArgsError, option: &str, text: &str) {
        let ArgsError::InvalidValue { option: got, .. } = &e else { panic!("expected InvalidValue, got {e:?}") };
        assert_eq!(*got, option, "{e}");
        assert!(e.to_string().contains(text), "{e}");
    }

    fn monitors(extra: &[&str]) -> Vec<MonitorConfig> {
        run(extra).monitors
    }

    fn one(socket: MonitorSocket) -> Vec<MonitorConfig> {
        vec![MonitorConfig { socket, pretty: false, label: None }]
    }

    fn unix_listen(path: &str, wait: bool) -> MonitorSocket {
        MonitorSocket::UnixListen { path: PathBuf::from(path), wait }
    }

    #[test]
    fn qmp_unix() {
        for (spec, want) in [
            ("unix:/tmp/q.sock,server=on,wait=off", unix_listen("/tmp/q.sock", false)),
            ("unix:/tmp/q.sock,server,nowait", unix_listen("/tmp/q.sock", false)),
            ("unix:path=/tmp/q.sock,server=on,wait=off", unix_listen("/tmp/q.sock", false)),
            // QEMU's defaults: a server waits; without server=on, connect.
            ("unix:/tmp/q.sock,server=on", unix_listen("/tmp/q.sock", true)),
            ("unix:/tmp/q.sock,server,wait=on", unix_listen("/tmp/q.sock", true)),
            ("unix:/tmp/q.sock", MonitorSocket::UnixConnect { path: "/tmp/q.sock".into() }),
            ("unix:/tmp/q.sock,server=off", MonitorSocket::UnixConnect { path: "/tmp/q.sock".into() }),
            ("unix:/tmp/a,,b,server", unix_listen("/tmp/a,b", true)),
        ] {
            assert_eq!(monitors(&["-qmp", spec]), one(want), "{spec}");
        }
    }

    #[test]
    fn qmp_tcp_stdio_and_several() {
        let listen = |host: &str, port, wait| MonitorSocket::TcpListen { host: host.into(), port, wait };
        for (spec, want) in [
            ("tcp:localhost:4444,server=on,wait=off", listen("localhost", 4444, false)),
            ("tcp:127.0.0.1:4444,server", listen("127.0.0.1", 4444, true)),
            ("tcp::4444,server,nowait", listen("0.0.0.0", 4444, false)),
            ("tcp:localhost:4444", MonitorSocket::TcpConnect { host: "localhost".into(), port: 4444 }),
            ("tcp::4444", MonitorSocket::TcpConnect { host: "localhost".into(), port: 4444 }),
            ("stdio", MonitorSocket::Stdio),
        ] {
            assert_eq!(monitors(&["-qmp", spec]), one(want), "{spec}");
        }
        let m = monitors(&["-qmp", "unix:/a,server,nowait", "-qmp-pretty", "tcp::1,server,nowait", "-qmp", "stdio"]);
        assert_eq!(
            m,
            [
                MonitorConfig { socket: unix_listen("/a", false), pretty: false, label: None },
                MonitorConfig { socket: listen("0.0.0.0", 1, false), pretty: true, label: None },
                MonitorConfig { socket: MonitorSocket::Stdio, pretty: false, label: None },
            ]
        );
    }

    #[test]
    fn qmp_errors() {
        for spec in ["pty", "file:/x", "telnet::4444,server", "udp::4444", "mon:stdio", "", "/tmp/q.sock", "vc"] {
            assert_err(err(&["-qmp", spec]), "-qmp", "unknown QMP backend");
        }
        assert_eq!(
            err(&["-qmp", "bogus"]).to_string(),
            "-qmp: invalid value 'bogus': unknown QMP backend; use unix:PATH,server=on,wait=off, \
             tcp:HOST:PORT,server=on,wait=off, stdio or chardev:ID"
        );
        assert_err(err(&["-qmp", "unix:"]), "-qmp", "needs a socket path");
        assert_err(err(&["-qmp", "unix:,server"]), "-qmp", "needs a socket path");
        assert_err(err(&["-qmp", "unix:path=,server"]), "-qmp", "empty path");
        assert_err(err(&["-qmp", "unix:/q,wait=off"]), "-qmp", "wait= only applies");
        assert_err(err(&["-qmp", "unix:/q,nowait"]), "-qmp", "wait= only applies");
        assert_err(err(&["-qmp", "unix:/q,server=maybe"]), "-qmp", "on|off");
        assert_err(err(&["-qmp", "unix:/q,reconnect=1"]), "-qmp", "unknown property");
        for spec in ["tcp:localhost:http", "tcp:localhost:0", "tcp:localhost:65536", "tcp:h:", "tcp:h:-1", "tcp:h:+1"] {
            assert_err(err(&["-qmp", spec]), "-qmp", "bad port");
        }
        assert_err(err(&["-qmp", "tcp:localhost"]), "-qmp", "needs HOST:PORT");
        assert_err(err(&["-qmp", "tcp::4444,wait=off"]), "-qmp", "wait= only applies");
        assert_err(err(&["-qmp", "tcp::4444,server,nodelay=maybe"]), "-qmp", "unknown property");
        assert_err(err(&["-qmp", "chardev:"]), "-qmp", "needs the id");
        assert_err(err(&["-qmp", "chardev:nope"]), "-qmp", "chardev 'nope' is not defined");
    }

    #[test]
    fn qmp_stdio_owns_stdin() {
        assert_err(err(&["-qmp", "stdio", "-serial", "stdio"]), "-qmp", "stdio is used twice (also by -serial stdio)");
        assert_err(err(&["-chardev", "stdio,id=c", "-qmp", "stdio"]), "-qmp", "also by -chardev id=c");
        assert_err(err(&["-qmp", "stdio", "-qmp", "stdio"]), "-qmp", "also by -qmp stdio");
        // The implicit legacy serial port yields stdin to the monitor.
        assert_eq!(run(&["-M", "microvm,legacy", "-qmp", "stdio"]).serial, Some(SerialConfig::Null));
    }

    #[test]
    fn mon_on_a_chardev() {
        // A -mon is labelled with its chardev's id (query-chardev); compared without it here.
        let mon = |chardev: &str, mon: &str| {
            let mut m = monitors(&["-chardev", chardev, "-mon", mon]);
            for config in &mut m {
                let id = chardev.split(",id=").nth(1).and_then(|rest| rest.split(',').next());
                assert_eq!(config.label.as_deref(), id, "{chardev}");
                config.label = None;
            }
            m
        };
        assert_eq!(
            mon("socket,id=m,path=/q,server=on,wait=off", "chardev=m,mode=control"),
            one(unix_listen("/q", false))
        );
        assert_eq!(mon("socket,id=m,path=/q,server", "m,mode=control"), one(unix_listen("/q", true)));
        assert_eq!(
            mon("socket,id=m,path=/q", "chardev=m,mode=control"),
            one(MonitorSocket::UnixConnect { path: "/q".into() })
        );
        assert_eq!(
            mon("socket,id=m,host=localhost,port=4444,server=on,wait=off", "chardev=m,mode=control"),
            one(MonitorSocket::TcpListen { host: "localhost".into(), port: 4444, wait: false })
        );
        assert_eq!(
            mon("socket,id=m,host=::1,port=4444", "chardev=m,mode=control"),
            one(MonitorSocket::TcpConnect { host: "::1".into(), port: 4444 })
        );
        // QEMU's Python harness: an inherited connected socket.
        assert_eq!(mon("socket,id=mon,fd=3", "chardev=mon,mode=control"), one(MonitorSocket::Fd(3)));
        assert_eq!(mon("stdio,id=m", "chardev=m,mode=control"), one(MonitorSocket::Stdio));
        assert_eq!(
            mon("socket,id=m,fd=3", "chardev=m,mode=control,pretty=on"),
            vec![MonitorConfig { socket: MonitorSocket::Fd(3), pretty: true, label: None }]
        );
        assert_eq!(
            mon("socket,id=m,fd=3", "chardev=m,mode=control,pretty"),
            vec![MonitorConfig { socket: MonitorSocket::Fd(3), pretty: true, label: None }]
        );
        // -qmp chardev:ID is the same thing; -mon may come before its chardev.
        assert_eq!(
            monitors(&["-qmp", "chardev:m", "-chardev", "socket,id=m,fd=4"]),
            [MonitorConfig { socket: MonitorSocket::Fd(4), pretty: false, label: Some("m".into()) }]
        );
        assert_eq!(monitors(&["-mon", "chardev=m,mode=control", "-chardev", "socket,id=m,fd=4"]).len(), 1);
    }

    #[test]
    fn mon_errors() {
        let sock = ["-chardev", "socket,id=m,path=/q,server=on,wait=off"];
        let with = |mon: &str| err(&[sock[0], sock[1], "-mon", mon]);
        assert_err(with("mode=control"), "-mon", "chardev=ID is required");
        assert_err(with("chardev=m,mode=qmp"), "-mon", "unknown monitor mode");
        assert_err(
            err(&[sock[0], sock[1], "-mon", "chardev=m", "-mon", "chardev=m,mode=control"]),
            "-mon",
            "already used",
        );
        assert_err(with("chardev=m,mode=control,pretty=maybe"), "-mon", "on|off");
        assert_err(with("chardev=m,mode=control,default=on"), "-mon", "unknown property");
        assert_err(with("chardev=x,mode=control"), "-mon", "chardev 'x' is not defined");
        assert_err(
            err(&[sock[0], sock[1], "-mon", "chardev=m,mode=control", "-mon", "chardev=m,mode=control"]),
            "-mon",
            "already used",
        );
        // A chardev a console uses.
        assert_err(
            err(&[
                sock[0],
                sock[1],
                "-device",
                "virtio-serial-device",
                "-device",
                "virtconsole,chardev=m",
                "-mon",
                "chardev=m,mode=control",
            ]),
            "-mon",
            "chardev 'm' is already used by another device",
        );
        assert_err(err(&["-chardev", "pty,id=m", "-mon", "m,mode=control"]), "-mon", "is a pty");
        assert_err(err(&["-chardev", "file,id=m,path=/x", "-mon", "m,mode=control"]), "-mon", "is a file");
        // The socket chardev's own errors.
        for (spec, text) in [
            ("socket,id=m,fd=3,server=on", "listening socket"),
            ("socket,id=m,fd=x", "file descriptor number"),
            ("socket,id=m,fd=-1", "file descriptor number"),
            ("socket,id=m,fd=99999999999", "file descriptor number"),
            ("socket,id=m,host=h", "host= needs port="),
            ("socket,id=m,host=h,port=x", "bad port"),
            ("socket,id=m,path=/q,fd=3", "only one of"),
            ("socket,id=m,path=/q,host=h,port=1", "only one of"),
            ("socket,id=m,port=1", "path= is required"),
            ("socket,id=m,host=h,port=1,wait=off", "wait= only applies"),
        ] {
            assert_err(err(&["-chardev", spec]), "-chardev", text);
        }
    }

    #[test]
    fn start_paused_name_uuid() {
        let c = run(&[]);
        assert!(!c.start_paused);
        assert_eq!((c.name, c.debug_threads, c.uuid), (None, false, None));
        assert!(run(&["-S"]).start_paused);
        assert!(run(&["--S"]).start_paused);
        assert_eq!(run(&["-name", "vm0"]).name.as_deref(), Some("vm0"));
        assert_eq!(run(&["-name", "a,,b"]).name.as_deref(), Some("a,b"));
        assert_eq!(run(&["-name", ""]).name, None);
        let c = run(&["-name", "guest=vm1,debug-threads=on,process=qemu-vm1"]);
        assert_eq!((c.name.as_deref(), c.debug_threads), (Some("vm1"), true));
        let c = run(&["-name", "vm1,debug-threads"]);
        assert_eq!((c.name.as_deref(), c.debug_threads), (Some("vm1"), true));
        // Repeated -name options merge key by key, as in QEMU.
        let c = run(&["-name", "vm1,debug-threads=on", "-name", "vm2"]);
        assert_eq!((c.name.as_deref(), c.debug_threads), (Some("vm2"), true));
        let c = run(&["-name", "vm1", "-name", "debug-threads=off"]);
        assert_eq!((c.name.as_deref(), c.debug_threads), (Some("vm1"), false));
        assert_err(err(&["-name", "vm,debug-threads=maybe"]), "-name", "on|off");
        assert_err(err(&["-name", "vm,colour=red"]), "-name", "unknown property");

        let uuid = "123e4567-e89b-12d3-a456-426614174000";
        assert_eq!(run(&["-uuid", uuid]).uuid.as_deref(), Some(uuid));
        assert_eq!(run(&["-uuid", &uuid.to_uppercase()]).uuid.as_deref(), Some(uuid));
        for bad in [
            "",
            "123e4567e89b12d3a456426614174000",
            "123e4567-e89b-12d3-a456-42661417400",
            "123e4567-e89b-12d3-a456-4266141740000",
            "123e4567-e89b-12d3-a456_426614174000",
            "g23e4567-e89b-12d3-a456-426614174000",
            "{123e4567-e89b-12d3-a456-426614174000}",
            "123e4567-e89b-12d3-a456-42661417400é",
        ] {
            assert_err(err(&["-uuid", bad]), "-uuid", "expected a UUID");
        }
    }

    #[test]
    fn daemonize_and_pidfile_are_launch_options() {
        let l = launch(&[]).unwrap();
        assert_eq!((l.daemonize, l.pidfile), (false, None));
        let l = launch(&["-daemonize", "-pidfile", "/run/vm.pid"]).unwrap();
        assert_eq!((l.daemonize, l.pidfile), (true, Some(PathBuf::from("/run/vm.pid"))));
        // They are not VM configuration.
        assert_eq!(l.vm, run(&[]));
        assert_err(err(&["-pidfile", ""]), "-pidfile", "empty path");
        assert_eq!(err(&["-pidfile"]), ArgsError::MissingValue("-pidfile"));
        assert_eq!(err(&["-uuid"]), ArgsError::MissingValue("-uuid"));
        assert_eq!(err(&["-qmp"]), ArgsError::MissingValue("-qmp"));
        assert_eq!(err(&["-mon"]), ArgsError::MissingValue("-mon"));
    }
}
