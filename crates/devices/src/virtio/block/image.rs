//! Images the device reads through a format layer rather than as raw bytes: qcow2
//! (`-drive format=qcow2`, with its chain of backing files), and the temporary qcow2
//! overlay of `snapshot=on` over a raw or qcow2 image. The format is imago's (its `sync`
//! build: blocking calls on the device thread, no async runtime).
//!
//! Decisions:
//! - Every file of the chain is opened here, when the device is created: before the
//!   VMM's jail and Landlock close the file system, and before any seccomp filter.
//!   Backing files are opened read-only and locked shared, the top image exclusively
//!   when writable (as QEMU's image locking), each with the drive's O_DIRECT choice.
//! - A relative backing file name is taken relative to the directory of the image that
//!   names it, as QEMU does; the format is the header's `backing_fmt` (qcow2 or raw),
//!   probed only when the header has none.
//! - imago keeps qcow2 metadata (L2 tables, refcounts) in a write-back cache: a guest
//!   FLUSH writes it and then syncs the file; with cache=writethrough/directsync it is
//!   written after every write, since those modes promise durable completions and offer
//!   no FLUSH. Dropping the image (VM exit, `quit`) writes what is left, so the file is
//!   consistent for `qemu-img check` however the VM ended short of a crash.
//! - The `snapshot=on` overlay is an unnamed file (O_TMPFILE) in `$TMPDIR` or
//!   `/var/tmp`, as QEMU picks: it vanishes when the process ends, even by SIGKILL.

use super::CacheMode;
use imago::file::File as ImagoFile;
use imago::format::gate::ImplicitOpenGate;
use imago::io_buffers::{IoVector, IoVectorMut};
use imago::qcow2::Qcow2;
use imago::raw::Raw;
use imago::{FormatAccess, FormatCreateBuilder, FormatDriverBuilder, StorageOpenOptions};
use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, IoSliceMut, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The first bytes of every qcow2 image ("QFI\xfb").
const QCOW2_MAGIC: [u8; 4] = *b"QFI\xfb";
/// Where `snapshot=on` overlays go when `$TMPDIR` is not set (QEMU's choice too).
const OVERLAY_DIR: &str = "/var/tmp";

/// The format of a drive's image (`-drive format=`). Nothing is probed: the
/// default is raw, as QEMU's without probing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImageFormat {
    #[default]
    Raw,
    Qcow2,
}

/// How the image is presented beyond its file: format, overlay, discard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageOptions {
    pub format: ImageFormat,
    /// `snapshot=on`: the image is opened read-only and the guest's writes go to a
    /// temporary qcow2 overlay, dropped when the VM ends.
    pub snapshot: bool,
    /// `discard=unmap|on` (`Some(true)`) or `ignore|off` (`Some(false)`); `None`
    /// leaves the default: on for a raw file (holes punched, microvm's behaviour
    /// since the first block device), ignore for qcow2 (QEMU's default).
    pub discard: Option<bool>,
}

impl ImageOptions {
    /// Whether the guest is offered DISCARD (and WRITE_ZEROES may unmap).
    pub(super) fn discard_on(&self) -> bool {
        self.discard.unwrap_or(self.format == ImageFormat::Raw && !self.snapshot)
    }

    /// Whether I/O goes through the format layer rather than straight to the file.
    pub fn formatted(&self) -> bool {
        self.format != ImageFormat::Raw || self.snapshot
    }
}

/// Why an image's format layer cannot be opened; `disk.rs` names the drive.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("not a qcow2 image (format=qcow2 was given; a raw image needs format=raw)")]
    NotQcow2,
    #[error("cannot open its backing file {}: {source}", .path.display())]
    Backing {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("qcow2: {0}")]
    Format(#[source] io::Error),
    #[error("snapshot=on: cannot create the temporary overlay in {}: {source}", .dir.display())]
    Overlay {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// An open image behind its format layer.
pub(super) struct Image {
    access: FormatAccess<ImagoFile>,
    cache: CacheMode,
}

impl Image {
    /// Opens the image whose top file is `file` (already opened and locked by the
    /// caller as the drive asks, read-only under `snapshot=on`).
    pub(super) fn open(
        file: &File,
        path: &Path,
        opts: &ImageOptions,
        cache: CacheMode,
        read_only: bool,
    ) -> Result<Image, ImageError> {
        let direct = matches!(cache, CacheMode::None | CacheMode::Directsync);
        let gate = Gate { direct, failed: Rc::default() };
        // The base is writable only when the guest writes to it (no overlay).
        let writable = !read_only && !opts.snapshot;
        let storage = |file: &File| -> Result<ImagoFile, ImageError> {
            let dup = file.try_clone().map_err(ImageError::Format)?;
            let sopts = StorageOpenOptions::new().filename(path).write(writable).direct(direct);
            ImagoFile::from_open_file(dup, sopts).map_err(ImageError::Format)
        };
        let base = match opts.format {
            ImageFormat::Qcow2 => {
                check_magic(path)?;
                let builder = Qcow2::<ImagoFile>::builder(storage(file)?).write(writable);
                let qcow2 = builder.open(gate.clone()).map_err(|e| gate.error(e))?;
                FormatAccess::new(qcow2)
            }
            ImageFormat::Raw => {
                let raw = Raw::builder(storage(file)?).write(writable).open(gate.clone()).map_err(|e| gate.error(e))?;
                FormatAccess::new(raw)
            }
        };
        let access = if opts.snapshot { overlay(base, gate)? } else { base };
        Ok(Image { access, cache })
    }

    /// The size the guest sees, in bytes.
    pub(super) fn size(&self) -> u64 {
        self.access.size()
    }

    /// Reads `offset..` into the buffers of `iovs` (zeroes where nothing is allocated
    /// down the chain).
    pub(super) fn read(&self, iovs: &[libc::iovec], offset: u64) -> io::Result<()> {
        let bufs: Vec<IoSliceMut> = iovs
            .iter()
            // SAFETY: each iovec points into guest memory that stays mapped for the whole
            // request, with its exact length; nothing else touches those bytes meanwhile
            // (the guest handed them to the device until the request completes).
            .map(|iov| IoSliceMut::new(unsafe { std::slice::from_raw_parts_mut(iov.iov_base.cast(), iov.iov_len) }))
            .collect();
        self.access.readv(IoVectorMut::from(bufs), offset)
    }

    /// Writes the buffers of `iovs` at `offset`.
    pub(super) fn write(&self, iovs: &[libc::iovec], offset: u64) -> io::Result<()> {
        let bufs: Vec<IoSlice> = iovs
            .iter()
            // SAFETY: as in `read`; the device only reads these buffers.
            .map(|iov| IoSlice::new(unsafe { std::slice::from_raw_parts(iov.iov_base.cast(), iov.iov_len) }))
            .collect();
        self.access.writev(IoVector::from(bufs), offset)?;
        self.write_through()
    }

    /// Writes the metadata cache back and makes everything durable, as the cache mode
    /// asks (cache=unsafe: written back, not synced).
    pub(super) fn flush(&self) -> io::Result<()> {
        self.access.flush()?;
        if self.cache == CacheMode::Unsafe {
            return Ok(());
        }
        self.access.sync()
    }

    /// Writes the metadata cache back, without syncing: the save of a snapshot, on
    /// the VMM's thread, whose filter allows writing but not fsync.
    pub(super) fn write_back(&self) -> io::Result<()> {
        self.access.flush()
    }

    /// With writethrough/directsync (O_DSYNC), a completed write includes its metadata.
    fn write_through(&self) -> io::Result<()> {
        match self.cache {
            CacheMode::Writethrough | CacheMode::Directsync => self.access.flush(),
            _ => Ok(()),
        }
    }

    /// Deallocates `len` bytes at `offset`; they then read as zeroes (a qcow2 zero
    /// cluster where a backing file would otherwise show through, as QEMU's discard).
    pub(super) fn discard(&mut self, offset: u64, len: u64) -> io::Result<()> {
        match self.access.discard_to_zero(offset, len) {
            Err(e) if e.kind() == io::ErrorKind::Unsupported => Ok(()),
            done => done.and_then(|()| self.write_through()),
        }
    }

    /// Makes `len` bytes at `offset` read as zeroes, deallocating them if `unmap`.
    pub(super) fn write_zeroes(&mut self, offset: u64, len: u64, unmap: bool) -> io::Result<()> {
        if unmap {
            self.access.discard_to_zero(offset, len)?;
        } else {
            self.access.write_zeroes(offset, len)?;
        }
        self.write_through()
    }
}

/// Whether a file used as raw starts like a qcow2 image: QEMU would have probed it, so a
/// command line without `format=` deserves a word (read through the drive's descriptor,
/// which the caller knows is not O_DIRECT).
pub(super) fn looks_like_qcow2(file: &File) -> bool {
    use std::os::unix::fs::FileExt;
    let mut magic = [0u8; 4];
    file.read_exact_at(&mut magic, 0).is_ok() && magic == QCOW2_MAGIC
}

/// Refuses a file that is not qcow2 before imago parses it, so a raw image given
/// format=qcow2 gets a plain answer.
/// Read through a descriptor of its own: the drive's may be O_DIRECT, which a
/// 4-byte read does not suit.
fn check_magic(path: &Path) -> Result<(), ImageError> {
    let mut magic = [0u8; 4];
    match File::open(path).and_then(|mut f| f.read_exact(&mut magic)) {
        Ok(()) if magic == QCOW2_MAGIC => Ok(()),
        Ok(()) => Err(ImageError::NotQcow2),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(ImageError::NotQcow2),
        Err(e) => Err(ImageError::Format(e)),
    }
}

/// The `snapshot=on` overlay: a new qcow2 image of the base's size in an unnamed
/// temporary file, with `base` as its backing image.
fn overlay(base: FormatAccess<ImagoFile>, gate: Gate) -> Result<FormatAccess<ImagoFile>, ImageError> {
    let dir =
        std::env::var_os("TMPDIR").filter(|d| !d.is_empty()).map_or_else(|| PathBuf::from(OVERLAY_DIR), PathBuf::from);
    let failed = |source| ImageError::Overlay { dir: dir.clone(), source };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(&dir)
        .map_err(failed)?;
    let size = base.size();
    let storage = ImagoFile::from_open_file(file, StorageOpenOptions::new().filename(dir.join("overlay")).write(true))
        .map_err(failed)?;
    let qcow2 = Qcow2::<ImagoFile>::create_builder(storage)
        .size(size)
        .create_open(gate, |image| Ok(Qcow2::<ImagoFile>::builder(image).backing(Some(base))))
        .map_err(failed)?;
    Ok(FormatAccess::new(qcow2))
}

/// Opens what an image's header names (its backing chain), as the drive asks:
/// read-only and locked shared, O_DIRECT with cache=none/directsync. Remembers the
/// first file that failed, so the error names it.
#[derive(Clone)]
struct Gate {
    direct: bool,
    failed: Rc<RefCell<Option<(PathBuf, io::Error)>>>,
}

impl Gate {
    /// The error of a failed open: naming the backing file when one failed.
    fn error(&self, e: io::Error) -> ImageError {
        match self.failed.borrow_mut().take() {
            // A header cut short or overwritten names "files" of zero bytes.
            Some((path, _)) if path.as_os_str().as_encoded_bytes().iter().any(u8::is_ascii_control) => {
                ImageError::Format(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the header's backing file name is not a file name (is the image corrupt?)",
                ))
            }
            Some((path, source)) => ImageError::Backing { path, source },
            None => ImageError::Format(e),
        }
    }

    fn open_file(&self, path: &Path, writable: bool) -> io::Result<File> {
        let flags = if self.direct { libc::O_DIRECT } else { 0 };
        let file = OpenOptions::new().read(true).write(writable).custom_flags(flags).open(path)?;
        lock(&file, !writable)?;
        Ok(file)
    }
}

impl ImplicitOpenGate<ImagoFile> for Gate {
    fn open_format<F: FormatDriverBuilder<ImagoFile>>(&mut self, builder: F) -> io::Result<FormatAccess<ImagoFile>> {
        Ok(FormatAccess::new(builder.open(self.clone())?))
    }

    fn open_storage(&mut self, opts: StorageOpenOptions) -> io::Result<ImagoFile> {
        let path = opts.get_filename().map(Path::to_path_buf).unwrap_or_default();
        let writable = opts.get_writable();
        let file = self.open_file(&path, writable).inspect_err(|e| {
            // imago wraps the error in context lines; the OS's reason is what the
            // user needs next to the file's name.
            let reason =
                e.raw_os_error().map_or_else(|| io::Error::new(e.kind(), e.to_string()), io::Error::from_raw_os_error);
            self.failed.borrow_mut().get_or_insert((path.clone(), reason));
        })?;
        ImagoFile::from_open_file(file, opts.direct(self.direct))
    }
}

/// Another VM (or this one, twice) writing the same image corrupts it, as
/// QEMU's image locking also refuses: writers lock exclusively, readers shared.
pub(super) fn lock(file: &File, read_only: bool) -> io::Result<()> {
    let op = if read_only { libc::LOCK_SH } else { libc::LOCK_EX };
    // SAFETY: flock on an fd we own; no memory is touched.
    if unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
