//! What the monitors report of devices (`query-chardev`, `query-block`): records that
//! set-up fills and the monitors read, in a file of their own so neither side depends on
//! the other.

use crate::config::ChardevBackend;
use devices::virtio::block::CacheMode;

/// A chardev as `query-chardev` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChardevInfo {
    pub label: String,
    /// QEMU's description: `stdio`, `pty:/dev/pts/N`, `file`, `unix:PATH,server=on`.
    pub filename: String,
}

/// A disk as `query-block` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    pub id: String,
    pub path: std::path::PathBuf,
    pub read_only: bool,
    pub cache: CacheMode,
    /// Bytes, when set-up read it.
    pub size: u64,
}

impl BlockInfo {
    /// QEMU's `BlockdevCacheInfo` for the cache mode.
    pub fn cache_info(&self) -> serde_json::Value {
        let (writeback, direct, no_flush) = match self.cache {
            CacheMode::Writeback => (true, false, false),
            CacheMode::Writethrough => (false, false, false),
            CacheMode::None => (true, true, false),
            CacheMode::Directsync => (false, true, false),
            CacheMode::Unsafe => (true, false, true),
        };
        serde_json::json!({ "writeback": writeback, "direct": direct, "no-flush": no_flush })
    }
}

/// QEMU's `query-chardev` filename of a backend.
pub(crate) fn chardev_filename(backend: &ChardevBackend, pty: Option<&std::path::Path>) -> String {
    match backend {
        ChardevBackend::Null => "null".into(),
        ChardevBackend::Stdio => "stdio".into(),
        ChardevBackend::Pty => format!("pty:{}", pty.map(|p| p.display().to_string()).unwrap_or_default()),
        ChardevBackend::File { .. } => "file".into(),
        ChardevBackend::Socket { path, server, .. } => {
            format!("unix:{}{}", path.display(), if *server { ",server=on" } else { "" })
        }
        ChardevBackend::Tcp { host, port, server, .. } => {
            format!("tcp:{host}:{port}{}", if *server { ",server=on" } else { "" })
        }
        ChardevBackend::MuxPort(_) => "mux".into(),
    }
}
