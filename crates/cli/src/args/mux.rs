//! Who uses each `-chardev`, resolved once the command line is read: a plain
//! chardev serves one user (a device, the serial port, a monitor); a
//! `mux=on` one is shared by front ends (the serial port, virtconsoles and a
//! human monitor), as QEMU's mux chardev is. A human monitor on a plain
//! chardev (`-monitor stdio`, `-mon chardev=ID`) gets a mux of its own with
//! the monitor as its only front end; `-serial mon:stdio` is a mux on stdio
//! shared by the serial port and a human monitor.

use vmm::config::{ChardevBackend, ChardevConfig, MuxConfig};

use super::backends::{Backend, Chardev};
use super::{invalid, ArgsError};

/// QEMU's default escape key, C-a.
pub(super) const DEFAULT_ESCAPE: u8 = 1;

fn esc(s: &str) -> String {
    s.escape_debug().to_string()
}

/// The chardevs, and the muxes made so far.
pub(super) struct ChardevUsers {
    chardevs: Vec<(String, Option<Chardev>)>,
    /// The chardev id each mux was made from (`None`: implicit).
    mux_ids: Vec<Option<String>>,
    pub(super) muxes: Vec<MuxConfig>,
    escape: u8,
}

impl ChardevUsers {
    pub(super) fn new(chardevs: Vec<Chardev>, escape: u8) -> ChardevUsers {
        ChardevUsers {
            chardevs: chardevs.into_iter().map(|c| (c.id.clone(), Some(c))).collect(),
            mux_ids: Vec::new(),
            muxes: Vec::new(),
            escape,
        }
    }

    /// Takes chardev `id` for one user, unless it is a mux.
    fn lookup(&mut self, id: &str, option: &'static str, value: &str) -> Result<Lookup, ArgsError> {
        if let Some(index) = self.mux_ids.iter().position(|m| m.as_deref() == Some(id)) {
            return Ok(Lookup::Mux(index));
        }
        let Some((_, slot)) = self.chardevs.iter_mut().find(|(name, _)| name == id) else {
            return Err(invalid(
                option,
                value,
                format!("chardev '{}' is not defined (no -chardev with id={})", esc(id), esc(id)),
            ));
        };
        let Some(chardev) = slot.take() else {
            return Err(invalid(
                option,
                value,
                format!("chardev '{}' is already used by another device or monitor (share it with mux=on)", esc(id)),
            ));
        };
        if chardev.mux {
            let config = backend_config(chardev, option, value)?;
            self.mux_ids.push(Some(config.id.clone()));
            self.muxes.push(MuxConfig { chardev: config, monitor: false, escape: self.escape });
            return Ok(Lookup::Mux(self.muxes.len() - 1));
        }
        Ok(Lookup::Plain(chardev))
    }

    /// The chardev a guest front end (serial port, virtconsole) uses.
    pub(super) fn front_end(
        &mut self,
        id: &str,
        option: &'static str,
        value: &str,
    ) -> Result<ChardevConfig, ArgsError> {
        Ok(match self.lookup(id, option, value)? {
            Lookup::Mux(index) => {
                ChardevConfig { id: id.to_owned(), backend: ChardevBackend::MuxPort(index), logfile: None }
            }
            Lookup::Plain(chardev) => backend_config(chardev, option, value)?,
        })
    }

    /// A QMP monitor's chardev (never a mux: QMP needs the stream to itself).
    pub(super) fn qmp(&mut self, id: &str, option: &'static str, value: &str) -> Result<Backend, ArgsError> {
        match self.lookup(id, option, value)? {
            Lookup::Plain(chardev) => Ok(chardev.backend),
            Lookup::Mux(_) => Err(invalid(
                option,
                value,
                format!("chardev '{}' is a mux: a QMP monitor cannot share it; use mode=readline", esc(id)),
            )),
        }
    }

    /// A vhost-user device's chardev (never a mux: the protocol needs the socket to itself).
    pub(super) fn vhost_user(&mut self, id: &str, option: &'static str, value: &str) -> Result<Backend, ArgsError> {
        match self.lookup(id, option, value)? {
            Lookup::Plain(chardev) => Ok(chardev.backend),
            Lookup::Mux(_) => Err(invalid(
                option,
                value,
                format!("chardev '{}' is a mux: vhost-user needs the socket to itself", esc(id)),
            )),
        }
    }

    /// A human monitor on chardev `id`.
    pub(super) fn human_monitor(&mut self, id: &str, option: &'static str, value: &str) -> Result<(), ArgsError> {
        let index = match self.lookup(id, option, value)? {
            Lookup::Mux(index) => index,
            Lookup::Plain(chardev) => {
                let config = backend_config(chardev, option, value)?;
                self.mux_ids.push(None);
                self.muxes.push(MuxConfig { chardev: config, monitor: false, escape: self.escape });
                self.muxes.len() - 1
            }
        };
        if self.muxes[index].monitor {
            return Err(invalid(option, value, format!("chardev '{}' has a human monitor already", esc(id))));
        }
        self.muxes[index].monitor = true;
        Ok(())
    }

    /// A mux of its own on `backend` (`-monitor stdio|unix:|tcp:`, `-serial
    /// mon:stdio`), labelled `id`; returns its index.
    pub(super) fn implicit(&mut self, id: &str, backend: ChardevBackend, monitor: bool) -> usize {
        let chardev = ChardevConfig { id: id.to_owned(), backend, logfile: None };
        self.mux_ids.push(None);
        self.muxes.push(MuxConfig { chardev, monitor, escape: self.escape });
        self.muxes.len() - 1
    }
}

enum Lookup {
    Plain(Chardev),
    Mux(usize),
}

/// A chardev as the VMM opens it, for a serial port, console or mux.
fn backend_config(chardev: Chardev, option: &'static str, value: &str) -> Result<ChardevConfig, ArgsError> {
    let backend = match chardev.backend {
        Backend::Plain(backend) => backend,
        Backend::Tcp { host, port, server, wait } => ChardevBackend::Tcp { host, port, server, wait },
        Backend::Fd(_) => {
            return Err(invalid(
                option,
                value,
                format!(
                    "chardev '{}' is an inherited fd socket, which only a QMP monitor can use; \
                     a console, serial port or human monitor takes null, stdio, pty, file or a Unix or TCP socket",
                    esc(&chardev.id)
                ),
            ))
        }
    };
    Ok(ChardevConfig { id: chardev.id, backend, logfile: chardev.logfile })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use vmm::config::{ConsoleConfig, DeviceConfig, SerialConfig};

    fn port(id: &str, mux: usize) -> ChardevConfig {
        ChardevConfig { id: id.into(), backend: ChardevBackend::MuxPort(mux), logfile: None }
    }

    fn mux(id: &str, backend: ChardevBackend, monitor: bool, escape: u8) -> MuxConfig {
        MuxConfig { chardev: ChardevConfig { id: id.into(), backend, logfile: None }, monitor, escape }
    }

    #[test]
    fn a_mux_chardev_is_shared_by_serial_console_and_monitor() {
        let c = run(&[
            "-chardev",
            "stdio,mux=on,id=con",
            "-serial",
            "chardev:con",
            "-device",
            "virtio-serial-device",
            "-device",
            "virtconsole,chardev=con",
            "-mon",
            "chardev=con",
        ])
        .unwrap();
        assert_eq!(c.serial, Some(SerialConfig::Chardev(port("con", 0))));
        assert_eq!(c.devices, [DeviceConfig::Console(ConsoleConfig { chardev: port("con", 0) })]);
        assert_eq!(c.muxes, [mux("con", ChardevBackend::Stdio, true, 1)]);
        assert!(c.monitors.is_empty(), "a human monitor is no QMP monitor");
    }

    #[test]
    fn mon_stdio_monitor_stdio_and_echr() {
        let c = run(&["-serial", "mon:stdio", "-echr", "0x14"]).unwrap();
        assert_eq!(c.serial, Some(SerialConfig::Chardev(port("serial0", 0))));
        assert_eq!(c.muxes, [mux("serial0", ChardevBackend::Stdio, true, 0x14)]);
        let c = run(&["-monitor", "stdio", "-nodefaults", "-M", "microvm,legacy"]).unwrap();
        assert_eq!(c.serial, Some(SerialConfig::Null), "the implicit serial yields stdin");
        assert_eq!(c.muxes, [mux("compat_monitor0", ChardevBackend::Stdio, true, 1)]);
        let c = run(&["-monitor", "unix:/tmp/hmp.sock,server,nowait"]).unwrap();
        let sock = ChardevBackend::Socket { path: "/tmp/hmp.sock".into(), server: true, wait: false };
        assert_eq!(c.muxes, [mux("compat_monitor0", sock, true, 1)]);
        // A human monitor on a plain chardev has it to itself.
        let c = run(&["-chardev", "pty,id=h", "-mon", "chardev=h,mode=readline"]).unwrap();
        assert_eq!(c.muxes, [mux("h", ChardevBackend::Pty, true, 1)]);
        assert!(run(&["-monitor", "none"]).unwrap().muxes.is_empty());
    }

    #[test]
    fn mux_errors() {
        assert_invalid(err(&["-serial", "mon:stdio", "-chardev", "stdio,id=c"]), "-chardev", "stdio is used twice");
        assert_invalid(err(&["-monitor", "stdio", "-serial", "stdio"]), "-monitor", "stdio is used twice");
        assert_invalid(err(&["-monitor", "vc"]), "-monitor", "unknown monitor backend");
        assert_invalid(
            err(&["-chardev", "stdio,mux=on,id=c", "-mon", "chardev=c", "-mon", "chardev=c"]),
            "-mon",
            "has a human monitor already",
        );
        assert_invalid(
            err(&["-chardev", "stdio,mux=on,id=c", "-mon", "chardev=c,mode=control"]),
            "-mon",
            "a QMP monitor cannot share it",
        );
        for bad in ["256", "x", "-1", ""] {
            assert_invalid(err(&["-echr", bad]), "-echr", "character code");
        }
    }
}
