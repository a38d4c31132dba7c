//! Opening a chardev's backend (`-chardev`, `-serial`, a virtio console's port) from its
//! configuration.

use crate::config::{ChardevBackend, ChardevConfig};
use crate::error::{ConfigError, Error};
use devices::chardev::{self, Chardev};

/// Opens a chardev backend. A server socket with `wait=on` blocks here
/// until its client connects, before any vCPU runs, as in QEMU.
/// A mux's front end (`MuxPort`) has no backend of its own: `monitor::mux::open_chardev`
/// attaches it to its mux.
pub(crate) fn open_backend(cfg: &ChardevConfig) -> Result<Chardev, Error> {
    let backend = match &cfg.backend {
        ChardevBackend::MuxPort(_) => return Err(ConfigError::MuxFrontEnd { id: cfg.id.clone() }.into()),
        ChardevBackend::Null => chardev::ChardevBackend::Null,
        ChardevBackend::Stdio => chardev::ChardevBackend::Stdio,
        ChardevBackend::Pty => chardev::ChardevBackend::Pty,
        ChardevBackend::File { path, append } => chardev::ChardevBackend::File { path: path.clone(), append: *append },
        ChardevBackend::Socket { path, server, wait } => {
            chardev::ChardevBackend::Socket { path: path.clone(), server: *server, wait: *wait }
        }
        ChardevBackend::Tcp { host, port, server, wait } => {
            chardev::ChardevBackend::Tcp { host: host.clone(), port: *port, server: *server, wait: *wait }
        }
    };
    let mut chardev = Chardev::open(&cfg.id, &backend)?;
    if let Some(log) = &cfg.logfile {
        chardev.set_logfile(&log.path, log.append)?;
    }
    Ok(chardev)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `-chardev file,append=on` keeps the file's contents; QEMU's default truncates.
    #[test]
    fn file_chardev_honours_append() {
        let path = std::env::temp_dir().join(format!("microvm-append-{}.log", std::process::id()));
        for (append, want) in [(true, "old\n"), (false, "")] {
            std::fs::write(&path, "old\n").unwrap();
            let backend = ChardevBackend::File { path: path.clone(), append };
            let cfg = ChardevConfig { id: "f".into(), backend, logfile: None };
            let chardev = open_backend(&cfg).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), want, "append={append}");
            drop(chardev);
        }
        std::fs::remove_file(&path).unwrap();
    }
}
