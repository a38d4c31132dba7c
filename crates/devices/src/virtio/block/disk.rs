//! The backing store of a virtio-blk device: a raw image in a regular file or
//! a host block device, or an image behind a format layer (`image.rs`: qcow2,
//! the `snapshot=on` overlay). Opening (with the checks and the one-line errors
//! the VMM shows), probing what the file system supports, and the I/O itself.

use super::image::{lock, looks_like_qcow2, Image};
use super::{BlockError, BlockOptions, CacheMode};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub(super) const SECTOR_SIZE: u64 = 512;
/// Most iovecs one preadv/pwritev takes (UIO_MAXIOV).
pub(super) const IOV_MAX: usize = libc::UIO_MAXIOV as usize;
/// Alignment assumed for O_DIRECT when the kernel does not report it
/// (statx STATX_DIOALIGN, Linux 6.1+): a page is enough for every device.
const DEFAULT_DIO_ALIGN: u64 = 4096;
/// Size of the zero buffer WRITE_ZEROES falls back to writing.
const ZERO_CHUNK: usize = 64 << 10;
/// qcow2's default cluster size, the discard granularity hinted for qcow2 drives.
const QCOW2_CLUSTER: u64 = 64 << 10;

/// An iovec list pointing into guest memory, rebuilt for every request.
pub(super) struct IoVecs(pub(super) Vec<libc::iovec>);

// SAFETY: the pointers are plain addresses into the guest memory mapping; they
// are built, used and cleared within one request on the device's event loop
// thread, while the GuestMemoryMmap that owns the mapping is held.
unsafe impl Send for IoVecs {}

/// O_DIRECT constraints: buffer addresses aligned to `mem`, file offsets and
/// lengths to `offset`.
#[derive(Clone, Copy, Debug)]
struct DirectAlign {
    mem: u64,
    offset: u64,
}

pub(super) struct Disk {
    file: File,
    path: PathBuf,
    /// Size seen by the guest, in 512-byte sectors.
    pub(super) capacity: u64,
    pub(super) read_only: bool,
    cache: CacheMode,
    /// Set when the file is open with O_DIRECT.
    direct: Option<DirectAlign>,
    /// fallocate(PUNCH_HOLE | KEEP_SIZE) works on this file.
    pub(super) punch_hole: bool,
    /// fallocate(ZERO_RANGE | KEEP_SIZE) works (assumed until it fails).
    pub(super) zero_range: bool,
    /// Granularity hint for discards, in sectors (the file system block).
    pub(super) discard_alignment: u32,
    /// Page-aligned zeroes for emulating WRITE_ZEROES, allocated on first use.
    zeroes: Vec<u8>,
    /// One-time host-side warnings already given.
    warned_discard: bool,
    warned_direct: bool,
    /// Set when I/O goes through a format layer (qcow2, `snapshot=on`): every request
    /// is served by it, `file` then only holds the lock.
    image: Option<Box<Image>>,
}

fn is_disk(ft: std::fs::FileType) -> bool {
    ft.is_file() || ft.is_block_device()
}

/// Maps an error opening or inspecting `path` to a one-line BlockError.
pub(super) fn open_error(path: &Path, read_only: bool, e: io::Error) -> BlockError {
    let path = path.to_path_buf();
    match e.raw_os_error() {
        Some(libc::ENOENT) => BlockError::Missing { path },
        Some(libc::EACCES) | Some(libc::EPERM) => BlockError::PermissionDenied { path, read_only },
        Some(libc::EROFS) => BlockError::ReadOnlyFilesystem { path },
        Some(libc::EISDIR) => BlockError::NotADisk { path },
        _ => BlockError::Open { path, source: e },
    }
}

impl Disk {
    pub(super) fn open(opts: &BlockOptions) -> Result<Disk, BlockError> {
        let path = &opts.path;
        let read_only = opts.read_only;
        // snapshot=on: the guest's writes go to the overlay, never to this file.
        let file_read_only = read_only || opts.image.snapshot;
        // Refuse FIFOs, sockets, directories before open() (a FIFO would block).
        let meta = std::fs::metadata(path).map_err(|e| open_error(path, read_only, e))?;
        if !is_disk(meta.file_type()) {
            return Err(BlockError::NotADisk { path: path.clone() });
        }
        let direct = matches!(opts.cache, CacheMode::None | CacheMode::Directsync);
        let dsync = matches!(opts.cache, CacheMode::Writethrough | CacheMode::Directsync);
        let mut flags = 0;
        if direct {
            flags |= libc::O_DIRECT;
        }
        if dsync {
            flags |= libc::O_DSYNC;
        }
        let file =
            OpenOptions::new().read(true).write(!file_read_only).custom_flags(flags).open(path).map_err(|e| {
                if direct && e.raw_os_error() == Some(libc::EINVAL) {
                    BlockError::DirectUnsupported { path: path.clone() }
                } else {
                    open_error(path, read_only, e)
                }
            })?;
        // The path may have changed between stat and open: check what we got.
        let meta = file.metadata().map_err(|e| open_error(path, read_only, e))?;
        if !is_disk(meta.file_type()) {
            return Err(BlockError::NotADisk { path: path.clone() });
        }
        lock(&file, file_read_only).map_err(|e| match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => BlockError::Locked { path: path.clone(), read_only: file_read_only },
            _ => BlockError::Open { path: path.clone(), source: e },
        })?;
        let block_device = meta.file_type().is_block_device();
        let size = if block_device {
            // SAFETY: lseek on an fd we own; no memory is touched.
            let end = unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_END) };
            if end < 0 {
                return Err(BlockError::Open { path: path.clone(), source: io::Error::last_os_error() });
            }
            end as u64
        } else {
            meta.len()
        };
        if size % SECTOR_SIZE != 0 && !opts.image.formatted() {
            log::warn!(
                "virtio-blk: {}: size {size} is not a multiple of {SECTOR_SIZE}; \
                 the last {} bytes are not visible to the guest",
                path.display(),
                size % SECTOR_SIZE
            );
        }
        let image = if opts.image.formatted() {
            let image = Image::open(&file, path, &opts.image, opts.cache, read_only)
                .map_err(|source| BlockError::Image { path: path.clone(), source })?;
            Some(Box::new(image))
        } else {
            None
        };
        if image.is_none() && !direct && looks_like_qcow2(&file) {
            log::warn!(
                "virtio-blk: {}: a qcow2 image used as raw (nothing is probed; format=raw is the default): \
                 the guest sees its qcow2 metadata; add format=qcow2",
                path.display()
            );
        }
        let size = image.as_ref().map_or(size, |i| i.size());
        let direct = direct.then(|| dio_alignment(&file));
        // A hole punched past the end of the file changes nothing but tells
        // whether the file system supports it. Block devices do (discard /
        // zero-out); if one does not, discard degrades to a no-op at first use.
        let punch_hole =
            !read_only && opts.image.discard_on() && (image.is_some() || block_device || probe_punch_hole(&file, size));
        // A format deallocates whole clusters: qcow2's default size is the hint.
        let granule = if image.is_some() { QCOW2_CLUSTER } else { meta.blksize() };
        let discard_alignment = (granule.clamp(SECTOR_SIZE, 1 << 20) / SECTOR_SIZE) as u32;
        Ok(Disk {
            file,
            path: path.clone(),
            capacity: size / SECTOR_SIZE,
            read_only,
            cache: opts.cache,
            direct,
            punch_hole,
            zero_range: true,
            discard_alignment,
            zeroes: Vec::new(),
            warned_discard: false,
            warned_direct: false,
            image,
        })
    }

    /// Whether I/O goes through a format layer (which has no descriptor of its own
    /// for an io_uring to use).
    pub(super) fn formatted(&self) -> bool {
        self.image.is_some()
    }

    #[cfg(test)]
    pub(super) fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// The image's descriptor (also for requests queued on a ring).
    pub(super) fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    pub(super) fn cache(&self) -> CacheMode {
        self.cache
    }

    /// Whether O_DIRECT (if the file is open with it) takes these buffers at
    /// this offset as they are.
    pub(super) fn direct_aligned(&self, iovs: &[libc::iovec], offset: u64) -> bool {
        self.direct.map_or(true, |align| aligned(iovs, offset, align))
    }

    /// Reads `offset..` of the disk into the buffers of `iovs`.
    pub(super) fn read(&mut self, iovs: &mut [libc::iovec], offset: u64) -> io::Result<()> {
        self.transfer(iovs, offset, false)
    }

    /// Writes the buffers of `iovs` at `offset`.
    pub(super) fn write(&mut self, iovs: &mut [libc::iovec], offset: u64) -> io::Result<()> {
        self.transfer(iovs, offset, true)
    }

    fn transfer(&mut self, iovs: &mut [libc::iovec], offset: u64, write: bool) -> io::Result<()> {
        if let Some(image) = &self.image {
            return if write { image.write(iovs, offset) } else { image.read(iovs, offset) };
        }
        let mut pos = Progress { start: 0, offset };
        let Some(align) = self.direct else {
            return transfer(self.fd(), iovs, &mut pos, write);
        };
        if aligned(iovs, offset, align) {
            match transfer(self.fd(), iovs, &mut pos, write) {
                // The kernel wanted a stricter alignment than reported:
                // finish this request through the page cache.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                done => return done,
            }
        }
        // Buffers O_DIRECT cannot take (rare: Linux guests align to 512 bytes,
        // the page cache to pages): go through the page cache for this one
        // request. The kernel keeps the two coherent.
        self.set_direct(false)?;
        let done = transfer(self.fd(), &mut iovs[pos.start..], &mut pos.at_start(), write);
        if let Err(e) = self.set_direct(true) {
            if !self.warned_direct {
                log::warn!("virtio-blk: {}: cannot re-enable O_DIRECT: {e}", self.path.display());
                self.warned_direct = true;
            }
        }
        done
    }

    fn set_direct(&self, on: bool) -> io::Result<()> {
        // SAFETY: fcntl on an fd we own; no memory is touched.
        let flags = unsafe { libc::fcntl(self.fd(), libc::F_GETFL) };
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let flags = if on { flags | libc::O_DIRECT } else { flags & !libc::O_DIRECT };
        // SAFETY: as above.
        if unsafe { libc::fcntl(self.fd(), libc::F_SETFL, flags) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Makes written data durable, as the cache mode asks.
    pub(super) fn flush(&self) -> io::Result<()> {
        if let Some(image) = &self.image {
            return image.flush();
        }
        if self.cache == CacheMode::Unsafe {
            return Ok(());
        }
        self.file.sync_data()
    }

    /// Writes a format layer's metadata cache back (nothing to do for raw).
    pub(super) fn write_back(&self) -> io::Result<()> {
        self.image.as_ref().map_or(Ok(()), |image| image.write_back())
    }

    /// After a metadata-only change (fallocate): O_DSYNC does not cover it.
    fn sync_if_writethrough(&self) -> io::Result<()> {
        match self.cache {
            CacheMode::Writethrough | CacheMode::Directsync => self.file.sync_data(),
            _ => Ok(()),
        }
    }

    /// Deallocates `len` bytes at `offset`. A hint: if the file system turns
    /// out not to support it, the request succeeds without effect.
    pub(super) fn discard(&mut self, offset: u64, len: u64) -> io::Result<()> {
        if !self.punch_hole || len == 0 {
            return Ok(());
        }
        if let Some(image) = &mut self.image {
            return image.discard(offset, len);
        }
        match fallocate(self.fd(), libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, offset, len) {
            Ok(()) => self.sync_if_writethrough(),
            Err(e) if unsupported(&e) => {
                self.punch_hole = false;
                if !self.warned_discard {
                    let path = self.path.display();
                    log::warn!("virtio-blk: {path}: discard not supported here ({e}); ignoring discards");
                    self.warned_discard = true;
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Makes `len` bytes at `offset` read as zeroes, deallocating them if
    /// `unmap` and the file allows it.
    pub(super) fn write_zeroes(&mut self, offset: u64, len: u64, unmap: bool) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        if let Some(image) = &mut self.image {
            return image.write_zeroes(offset, len, unmap && self.punch_hole);
        }
        if unmap && self.punch_hole {
            match fallocate(self.fd(), libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, offset, len) {
                Ok(()) => return self.sync_if_writethrough(),
                Err(e) if unsupported(&e) => self.punch_hole = false,
                Err(e) => return Err(e),
            }
        }
        if self.zero_range {
            match fallocate(self.fd(), libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE, offset, len) {
                Ok(()) => return self.sync_if_writethrough(),
                Err(e) if unsupported(&e) => self.zero_range = false,
                Err(e) => return Err(e),
            }
        }
        self.write_zero_buffer(offset, len)
    }

    fn write_zero_buffer(&mut self, mut offset: u64, len: u64) -> io::Result<()> {
        if self.zeroes.is_empty() {
            self.zeroes = vec![0u8; ZERO_CHUNK + DEFAULT_DIO_ALIGN as usize];
        }
        let skip = self.zeroes.as_ptr().align_offset(DEFAULT_DIO_ALIGN as usize);
        let base = self.zeroes[skip..].as_mut_ptr();
        let end = offset + len;
        while offset < end {
            let chunk = (end - offset).min(ZERO_CHUNK as u64) as usize;
            let mut iov = [libc::iovec { iov_base: base.cast(), iov_len: chunk }];
            self.transfer(&mut iov, offset, true)?;
            offset += chunk as u64;
        }
        Ok(())
    }
}

/// Where a vectored transfer stands: the first iovec not yet done (partly
/// done ones are trimmed in place) and the file offset it goes to.
pub(super) struct Progress {
    pub(super) start: usize,
    pub(super) offset: u64,
}

impl Progress {
    /// The same position, relative to `iovs[start..]`.
    fn at_start(&self) -> Progress {
        Progress { start: 0, offset: self.offset }
    }
}

/// preadv/pwritev until every buffer of `iovs` is done. Short transfers are
/// resumed; end of file is an error (the caller checked the range).
pub(super) fn transfer(fd: RawFd, iovs: &mut [libc::iovec], pos: &mut Progress, write: bool) -> io::Result<()> {
    while pos.start < iovs.len() {
        let rest = &iovs[pos.start..];
        let count = rest.len().min(IOV_MAX) as libc::c_int;
        let offset = pos.offset as libc::off_t;
        // SAFETY: every iovec points into guest memory that stays mapped for
        // the whole request (or into our own buffer), with its exact length.
        let n = unsafe {
            if write {
                libc::pwritev(fd, rest.as_ptr(), count, offset)
            } else {
                libc::preadv(fd, rest.as_ptr(), count, offset)
            }
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(if write { io::ErrorKind::WriteZero } else { io::ErrorKind::UnexpectedEof }.into());
        }
        let mut n = n as usize;
        pos.offset += n as u64;
        while n > 0 {
            let iov = &mut iovs[pos.start];
            if n >= iov.iov_len {
                n -= iov.iov_len;
                pos.start += 1;
            } else {
                // SAFETY: n < iov_len, so the result stays inside the buffer.
                iov.iov_base = unsafe { iov.iov_base.cast::<u8>().add(n) }.cast();
                iov.iov_len -= n;
                n = 0;
            }
        }
    }
    Ok(())
}

fn aligned(iovs: &[libc::iovec], offset: u64, align: DirectAlign) -> bool {
    offset % align.offset == 0
        && iovs.iter().all(|iov| iov.iov_base as u64 % align.mem == 0 && iov.iov_len as u64 % align.offset == 0)
}

/// The O_DIRECT alignment the kernel reports for the file, or a page.
fn dio_alignment(file: &File) -> DirectAlign {
    // SAFETY: an all-zero statx is a valid value of this plain C struct.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx writes only into `stx`; the empty path with AT_EMPTY_PATH
    // names the fd itself.
    let rc =
        unsafe { libc::statx(file.as_raw_fd(), c"".as_ptr(), libc::AT_EMPTY_PATH, libc::STATX_DIOALIGN, &mut stx) };
    if rc == 0 && stx.stx_mask & libc::STATX_DIOALIGN != 0 && stx.stx_dio_offset_align != 0 {
        DirectAlign { mem: u64::from(stx.stx_dio_mem_align.max(1)), offset: u64::from(stx.stx_dio_offset_align) }
    } else {
        DirectAlign { mem: DEFAULT_DIO_ALIGN, offset: DEFAULT_DIO_ALIGN }
    }
}

fn probe_punch_hole(file: &File, size: u64) -> bool {
    fallocate(file.as_raw_fd(), libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, size, SECTOR_SIZE).is_ok()
}

fn fallocate(fd: RawFd, mode: libc::c_int, offset: u64, len: u64) -> io::Result<()> {
    loop {
        // SAFETY: fallocate on an fd we own; no memory is touched.
        let rc = unsafe { libc::fallocate(fd, mode, offset as libc::off_t, len as libc::off_t) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS))
}
