//! `-serial` and `-device isa-serial`: which chardev the legacy 16550A
//! (COM1, QEMU's `serial0`) talks on.
//!
//! QEMU's `-serial` spellings kept: `stdio`, `null`, `none` (the port exists,
//! connected to nothing), `pty`, `file:PATH`, `unix:PATH[,server][,nowait]`,
//! `tcp:[HOST]:PORT[,server][,nowait]`, `chardev:ID`. As in QEMU, `none` adds
//! no port and the first other `-serial` is COM1; microvm has no COM2, so a
//! second one is an error, and so is `-device isa-serial` with a connected
//! `-serial` too (QEMU would add a second port).

use vmm::config::{ChardevBackend, MonitorSocket};

use super::control::{parse_tcp, parse_unix};
use super::{invalid, ArgsError};

const SERIAL: &str = "-serial";

/// What one `-serial` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum SerialSpec {
    /// `none`: the port (in legacy mode) is connected to nothing.
    None,
    /// `null`: the same, as QEMU's null chardev.
    Null,
    Stdio,
    /// `chardev:ID`: resolved once every `-chardev` is read.
    Chardev(String),
    /// `pty`, `file:`, `unix:`, `tcp:`: a chardev of its own.
    Backend(ChardevBackend),
    /// `mon:stdio`: stdio shared with a human monitor (C-a c switches).
    MonStdio,
}

impl SerialSpec {
    /// Whether something is connected to the port.
    pub(super) fn connected(&self) -> bool {
        !matches!(self, SerialSpec::None | SerialSpec::Null)
    }
}

/// One `-serial` value.
pub(super) fn parse_serial(value: &str) -> Result<SerialSpec, ArgsError> {
    Ok(match value {
        "stdio" => SerialSpec::Stdio,
        "none" => SerialSpec::None,
        "null" => SerialSpec::Null,
        "pty" => SerialSpec::Backend(ChardevBackend::Pty),
        "mon:stdio" => SerialSpec::MonStdio,
        _ => {
            if let Some(id) = value.strip_prefix("chardev:") {
                if id.is_empty() {
                    return Err(invalid(SERIAL, value, "chardev: needs the id of a -chardev"));
                }
                SerialSpec::Chardev(id.to_owned())
            } else if let Some(path) = value.strip_prefix("file:") {
                if path.is_empty() {
                    return Err(invalid(SERIAL, value, "file: needs a path"));
                }
                SerialSpec::Backend(ChardevBackend::File { path: path.into(), append: false })
            } else if let Some(rest) = value.strip_prefix("unix:") {
                SerialSpec::Backend(socket_backend(parse_unix(SERIAL, rest)?))
            } else if let Some(rest) = value.strip_prefix("tcp:") {
                SerialSpec::Backend(socket_backend(parse_tcp(SERIAL, rest)?))
            } else {
                return Err(invalid(
                    SERIAL,
                    value,
                    "not supported; use stdio, null, none, pty, file:PATH, unix:PATH[,server,nowait], \
                     tcp:HOST:PORT[,server,nowait] or chardev:ID",
                ));
            }
        }
    })
}

/// A `unix:`/`tcp:` socket spelled as for `-qmp`, as a chardev.
pub(super) fn socket_backend(socket: MonitorSocket) -> ChardevBackend {
    match socket {
        MonitorSocket::UnixListen { path, wait } => ChardevBackend::Socket { path, server: true, wait },
        MonitorSocket::UnixConnect { path } => ChardevBackend::Socket { path, server: false, wait: false },
        MonitorSocket::TcpListen { host, port, wait } => ChardevBackend::Tcp { host, port, server: true, wait },
        MonitorSocket::TcpConnect { host, port } => ChardevBackend::Tcp { host, port, server: false, wait: false },
        // parse_unix and parse_tcp make sockets only.
        MonitorSocket::Stdio | MonitorSocket::Fd(_) => ChardevBackend::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use vmm::config::{ChardevConfig, SerialConfig};

    fn serial(extra: &[&str]) -> Option<SerialConfig> {
        run(extra).unwrap_or_else(|e| panic!("{extra:?}: {e}")).serial
    }

    fn own(backend: ChardevBackend) -> Option<SerialConfig> {
        Some(SerialConfig::Chardev(ChardevConfig { id: "serial0".into(), backend, logfile: None }))
    }

    #[test]
    fn serial_backends() {
        assert_eq!(serial(&["-serial", "stdio"]), Some(SerialConfig::Stdio));
        assert_eq!(serial(&["-serial", "null"]), Some(SerialConfig::Null));
        assert_eq!(serial(&["-serial", "none"]), Some(SerialConfig::Null));
        assert_eq!(serial(&["-serial", "pty"]), own(ChardevBackend::Pty));
        assert_eq!(
            serial(&["-serial", "file:/tmp/com1.log"]),
            own(ChardevBackend::File { path: "/tmp/com1.log".into(), append: false })
        );
        assert_eq!(
            serial(&["-serial", "unix:/tmp/com1.sock,server,nowait"]),
            own(ChardevBackend::Socket { path: "/tmp/com1.sock".into(), server: true, wait: false })
        );
        assert_eq!(
            serial(&["-serial", "unix:/tmp/com1.sock"]),
            own(ChardevBackend::Socket { path: "/tmp/com1.sock".into(), server: false, wait: false })
        );
        assert_eq!(
            serial(&["-serial", "tcp::4555,server,nowait"]),
            own(ChardevBackend::Tcp { host: "0.0.0.0".into(), port: 4555, server: true, wait: false })
        );
        // chardev:ID takes the -chardev (defined before or after), under its own id.
        for line in [
            &["-serial", "chardev:s0", "-chardev", "file,id=s0,path=/tmp/s0"][..],
            &["-chardev", "file,id=s0,path=/tmp/s0", "-serial", "chardev:s0"],
            &["-chardev", "file,id=s0,path=/tmp/s0", "-device", "isa-serial,chardev=s0"],
            &[
                "-chardev",
                "file,id=s0,path=/tmp/s0",
                "-M",
                "microvm,isa-serial=off",
                "-device",
                "isa-serial,chardev=s0",
            ],
        ] {
            assert_eq!(
                serial(line),
                Some(SerialConfig::Chardev(ChardevConfig {
                    id: "s0".into(),
                    backend: ChardevBackend::File { path: "/tmp/s0".into(), append: false },
                    logfile: None,
                })),
                "{line:?}"
            );
        }
        // -device isa-serial alone: the port exists, connected to nothing.
        assert_eq!(serial(&["-device", "isa-serial", "-nodefaults"]), Some(SerialConfig::Null));
        // `none` adds no port: the next -serial is COM1.
        assert_eq!(serial(&["-serial", "none", "-serial", "pty"]), own(ChardevBackend::Pty));
        assert_eq!(serial(&["-serial", "pty", "-serial", "none"]), own(ChardevBackend::Pty));
    }

    #[test]
    fn serial_errors() {
        for bad in ["vc", "telnet::4444,server", "/dev/ttyS0", "udp::4444", "file:", "unix:", "chardev:", "COM1"] {
            assert_invalid(err(&["-serial", bad]), "-serial", "");
        }
        assert_invalid(err(&["-serial", "vc"]), "-serial", "use stdio, null, none, pty, file:PATH");
        assert_invalid(err(&["-serial", "chardev:nope"]), "-serial", "chardev 'nope' is not defined");
        assert_eq!(
            err(&["-M", "microvm,isa-serial=off", "-serial", "pty"]).to_string(),
            "-serial pty conflicts with -M isa-serial=off: there is no serial port to connect it to"
        );
        assert_invalid(
            err(&["-serial", "pty", "-device", "isa-serial,chardev=c", "-chardev", "null,id=c"]),
            "-device",
            "one serial port",
        );
        // A chardev serves one user.
        assert_invalid(
            err(&[
                "-chardev",
                "pty,id=c",
                "-serial",
                "chardev:c",
                "-device",
                "virtio-serial-device",
                "-device",
                "virtconsole,chardev=c",
            ]),
            "-device",
            "already used",
        );
        assert_invalid(err(&["-chardev", "socket,id=c,fd=3", "-serial", "chardev:c"]), "-serial", "fd socket");
    }
}
