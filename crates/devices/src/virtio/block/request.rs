//! One virtio-blk request: its descriptor chain checked and taken apart,
//! then carried out on the disk (virtio 1.x §5.2.6).
//!
//! Layout: the device-readable part holds the 16-byte header
//! (`le32 type, le32 reserved, le64 sector`) and, for writes, discards and
//! write-zeroes, the data; the device-writable part holds the data of reads
//! and GET_ID, and ends with the status byte. Descriptor boundaries carry no
//! meaning (any layout, as virtio 1.x requires), but every readable
//! descriptor must come before every writable one.

use super::disk::{Disk, IoVecs, IOV_MAX, SECTOR_SIZE};
use super::engine::{Completion, InFlight, Op, Queued};
use super::CacheMode;
use super::{MAX_DISCARD_SECTORS, MAX_DISCARD_SEG, MAX_WRITE_ZEROES_SECTORS, MAX_WRITE_ZEROES_SEG};
use crate::guest_memory::GuestMemoryMmap;
use crate::virtio::queue::Chain;
use std::ops::Deref;
use std::sync::Arc;
use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_FLUSH,
    VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_WRITE_ZEROES,
    VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
};

use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryBackend};

const HEADER_SIZE: u64 = 16;
/// Size of one discard / write-zeroes segment
/// (`le64 sector, le32 num_sectors, le32 flags`).
const SEGMENT_SIZE: u64 = 16;
pub(super) const ID_BYTES: usize = virtio_bindings::virtio_blk::VIRTIO_BLK_ID_BYTES as usize;

/// Kinds of guest mistakes, each logged once per device.
#[derive(Clone, Copy, Debug)]
pub(super) enum GuestError {
    ChainCut,
    NoStatus,
    StatusOutsideMemory,
    ReadableAfterWritable,
    ShortHeader,
    OutsideMemory,
    WrongDirection,
    NotSectorMultiple,
    PastEnd,
    BadSegments,
    ReadOnly,
    UnknownType,
    BadHead,
}

impl GuestError {
    fn describe(self) -> &'static str {
        match self {
            GuestError::ChainCut => {
                "a descriptor chain loops, is longer than the queue or has a bad next/indirect descriptor"
            }
            GuestError::NoStatus => "a request has no device-writable status byte at its end",
            GuestError::StatusOutsideMemory => "a request's status byte is outside guest memory",
            GuestError::ReadableAfterWritable => "a device-readable descriptor follows a device-writable one",
            GuestError::ShortHeader => "a request header is shorter than 16 bytes",
            GuestError::OutsideMemory => "a request buffer is outside guest memory",
            GuestError::WrongDirection => "a request's data buffer has the wrong direction",
            GuestError::NotSectorMultiple => "a request's data length is not a multiple of 512",
            GuestError::PastEnd => "a request reaches past the end of the disk",
            GuestError::BadSegments => "a discard/write-zeroes segment list is malformed",
            GuestError::ReadOnly => "a write to a read-only disk",
            GuestError::UnknownType => "a request of unknown type",
            GuestError::BadHead => "a descriptor head index is outside the queue",
        }
    }
}

#[derive(Clone, Copy)]
struct Desc {
    addr: GuestAddress,
    len: u32,
    writable: bool,
}

/// What a request ended with: the status byte, and how many data bytes
/// were written to the device-writable part.
type Outcome = (u32, u32);

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(raw)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(raw)
}

/// Serves requests. Holds the disk and buffers reused from request to request.
pub(super) struct Worker {
    pub(super) disk: Disk,
    pub(super) id: [u8; ID_BYTES],
    pub(super) discard: bool,
    pub(super) write_zeroes: bool,
    descs: Vec<Desc>,
    iovs: IoVecs,
    logged: u32,
    /// The drive id, for log lines.
    pub(super) name: String,
    /// Its `block_<id>` metrics (Firecracker's per-drive section).
    pub(super) metrics: Arc<metrics::BlockMetrics>,
    /// The io_uring engine's ring or the threads engine's pool; `None` serves
    /// every request synchronously.
    pub(super) engine: Option<Box<dyn InFlight>>,
    /// The queue, used-ring head and status byte of the chain being served, for
    /// a request handed to the engine.
    current: (u16, u16, GuestAddress),
}

impl Worker {
    pub(super) fn new(disk: Disk, id: [u8; ID_BYTES], name: String) -> Worker {
        Worker {
            disk,
            id,
            discard: false,
            write_zeroes: false,
            descs: Vec::with_capacity(usize::from(super::QUEUE_SIZE)),
            iovs: IoVecs(Vec::with_capacity(usize::from(super::QUEUE_SIZE))),
            logged: 0,
            metrics: metrics::BLOCK_DEVICES.register(&name),
            name,
            engine: None,
            current: (0, 0, GuestAddress(0)),
        }
    }

    pub(super) fn complain(&mut self, kind: GuestError) {
        self.metrics.invalid_reqs_count.inc();
        let bit = 1u32 << kind as u32;
        if self.logged & bit == 0 {
            self.logged |= bit;
            log::warn!("virtio-blk {}: guest error: {} (logged once)", self.name, kind.describe());
        }
    }

    /// Serves one chain; returns the length for its used-ring entry: the
    /// bytes written to its device-writable buffers (data and status), or 0
    /// if the chain is too broken to carry a status; `None` when the request
    /// was queued on the ring (`complete` finishes it).
    pub(super) fn serve<M>(&mut self, mem: &GuestMemoryMmap, queue: u16, chain: Chain<M>) -> Option<u32>
    where
        M: Deref<Target = GuestMemoryMmap>,
    {
        self.descs.clear();
        let head = chain.head_index();
        let mut cut = false;
        for d in chain {
            self.descs.push(Desc { addr: d.addr(), len: d.len(), writable: d.is_write_only() });
            // The iterator stops early (loop, too long, bad index or indirect
            // table) without saying so: the last descriptor then still has NEXT.
            cut = d.has_next();
        }
        let status = match self.status_address(mem, cut) {
            Ok(addr) => addr,
            Err(kind) => {
                self.complain(kind);
                return Some(0);
            }
        };
        self.current = (queue, head, status);
        let (status_byte, written) = match self.execute(mem) {
            Ok(Some(outcome)) => outcome,
            Ok(None) => return None,
            Err(kind) => {
                self.complain(kind);
                (if matches!(kind, GuestError::UnknownType) { VIRTIO_BLK_S_UNSUPP } else { VIRTIO_BLK_S_IOERR }, 0)
            }
        };
        self.iovs.0.clear();
        Some(self.finish(mem, status, status_byte, written))
    }

    /// Writes the status byte; returns the used length.
    fn finish(&mut self, mem: &GuestMemoryMmap, status: GuestAddress, status_byte: u32, written: u32) -> u32 {
        if mem.write_obj(status_byte as u8, status).is_err() {
            self.complain(GuestError::StatusOutsideMemory);
            return 0;
        }
        written + 1
    }

    /// Finishes a request the ring completed: counts it, writes its status
    /// byte; returns its head and used length.
    pub(super) fn complete(&mut self, mem: &GuestMemoryMmap, done: &Completion) -> (u16, u32) {
        let what = match done.op {
            Op::Read => "read",
            Op::Write => "write",
            Op::Flush => "flush",
        };
        let ok = done.outcome();
        if ok.is_ok() {
            let bytes = u64::from(done.len);
            match done.op {
                Op::Read => {
                    self.metrics.read_count.inc();
                    self.metrics.read_bytes.add(bytes);
                }
                Op::Write => {
                    self.metrics.write_count.inc();
                    self.metrics.write_bytes.add(bytes);
                }
                Op::Flush => {}
            }
        }
        let written = if done.op == Op::Read { done.len } else { 0 };
        let (status_byte, written) = self.io_outcome(ok, what, written);
        (done.head, self.finish(mem, done.status, status_byte, written))
    }

    /// Hands the gathered request to the engine, if it has one (a ring or a pool)
    /// and the request suits it; `false`: serve it here.
    fn queue(&mut self, op: Op, offset: u64, len: u64) -> bool {
        let Some(engine) = self.engine.as_mut() else { return false };
        // O_DIRECT on buffers it cannot take, or more iovecs than one call
        // takes: the sync path knows how to split or bounce those.
        if self.iovs.0.len() > IOV_MAX || (op != Op::Flush && !self.disk.direct_aligned(&self.iovs.0, offset)) {
            return false;
        }
        let (queue, head, status) = self.current;
        let request = Queued { queue, head, status, op, len: len as u32 };
        match engine.push(self.disk.fd(), offset, &mut self.iovs.0, request) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("virtio-blk {}: cannot queue the request ({e}); serving it synchronously", self.name);
                false
            }
        }
    }

    /// The status byte: the last byte of the last descriptor, which must be
    /// device-writable and inside guest memory.
    fn status_address(&self, mem: &GuestMemoryMmap, cut: bool) -> Result<GuestAddress, GuestError> {
        if cut {
            return Err(GuestError::ChainCut);
        }
        let last = self.descs.last().ok_or(GuestError::NoStatus)?;
        if !last.writable || last.len == 0 {
            return Err(GuestError::NoStatus);
        }
        let addr = last.addr.checked_add(u64::from(last.len) - 1).ok_or(GuestError::StatusOutsideMemory)?;
        if !mem.address_in_range(addr) {
            return Err(GuestError::StatusOutsideMemory);
        }
        Ok(addr)
    }

    fn execute(&mut self, mem: &GuestMemoryMmap) -> Result<Option<Outcome>, GuestError> {
        let readable = self.descs.iter().take_while(|d| !d.writable).count();
        if self.descs[readable..].iter().any(|d| !d.writable) {
            return Err(GuestError::ReadableAfterWritable);
        }
        let sum = |ds: &[Desc]| ds.iter().map(|d| u64::from(d.len)).sum::<u64>();
        let readable_len = sum(&self.descs[..readable]);
        // Less the status byte (the last descriptor has at least one byte).
        let writable_len = sum(&self.descs[readable..]) - 1;
        if readable_len < HEADER_SIZE {
            return Err(GuestError::ShortHeader);
        }
        let mut header = [0u8; HEADER_SIZE as usize];
        self.copy_from_guest(mem, 0, &mut header)?;
        let kind = le_u32(&header, 0);
        let sector = le_u64(&header, 8);
        let out_len = readable_len - HEADER_SIZE;
        match kind {
            VIRTIO_BLK_T_IN => {
                if out_len != 0 {
                    return Err(GuestError::WrongDirection);
                }
                let offset = self.check_range(sector, writable_len)?;
                self.gather(mem, true, 0, writable_len)?;
                if self.queue(Op::Read, offset, writable_len) {
                    return Ok(None);
                }
                let done = self.disk.read(&mut self.iovs.0, offset);
                if done.is_ok() {
                    self.metrics.read_count.inc();
                    self.metrics.read_bytes.add(writable_len);
                }
                Ok(Some(self.io_outcome(done, "read", writable_len as u32)))
            }
            VIRTIO_BLK_T_OUT => {
                if self.disk.read_only {
                    return Err(GuestError::ReadOnly);
                }
                if writable_len != 0 {
                    return Err(GuestError::WrongDirection);
                }
                let offset = self.check_range(sector, out_len)?;
                self.gather(mem, false, HEADER_SIZE, out_len)?;
                if self.queue(Op::Write, offset, out_len) {
                    return Ok(None);
                }
                let done = self.disk.write(&mut self.iovs.0, offset);
                if done.is_ok() {
                    self.metrics.write_count.inc();
                    self.metrics.write_bytes.add(out_len);
                }
                Ok(Some(self.io_outcome(done, "write", 0)))
            }
            VIRTIO_BLK_T_FLUSH => {
                self.metrics.flush_count.inc();
                self.iovs.0.clear();
                if self.disk.cache() != CacheMode::Unsafe && self.queue(Op::Flush, 0, 0) {
                    return Ok(None);
                }
                let done = self.disk.flush();
                Ok(Some(self.io_outcome(done, "flush", 0)))
            }
            VIRTIO_BLK_T_GET_ID => {
                if out_len != 0 {
                    return Err(GuestError::WrongDirection);
                }
                let n = writable_len.min(ID_BYTES as u64) as usize;
                let id = self.id;
                self.copy_to_guest(mem, &id[..n])?;
                Ok(Some((VIRTIO_BLK_S_OK, n as u32)))
            }
            VIRTIO_BLK_T_DISCARD | VIRTIO_BLK_T_WRITE_ZEROES => {
                if self.disk.read_only {
                    return Err(GuestError::ReadOnly);
                }
                let discard = kind == VIRTIO_BLK_T_DISCARD;
                if !(if discard { self.discard } else { self.write_zeroes }) {
                    return Ok(Some((VIRTIO_BLK_S_UNSUPP, 0)));
                }
                if writable_len != 0 {
                    return Err(GuestError::WrongDirection);
                }
                self.discard_or_zero(mem, discard, out_len).map(Some)
            }
            _ => Err(GuestError::UnknownType),
        }
    }

    /// Byte offset of `len` bytes at `sector`, if they are whole sectors
    /// inside the disk.
    fn check_range(&self, sector: u64, len: u64) -> Result<u64, GuestError> {
        if len % SECTOR_SIZE != 0 {
            return Err(GuestError::NotSectorMultiple);
        }
        let end = sector.checked_add(len / SECTOR_SIZE).ok_or(GuestError::PastEnd)?;
        if end > self.disk.capacity {
            return Err(GuestError::PastEnd);
        }
        Ok(sector * SECTOR_SIZE)
    }

    fn io_outcome(&self, done: std::io::Result<()>, what: &str, written: u32) -> Outcome {
        match done {
            Ok(()) => (VIRTIO_BLK_S_OK, written),
            Err(e) => {
                self.metrics.execute_fails.inc();
                // A host-side failure (EIO, ENOSPC...): worth every line.
                log::error!("virtio-blk {}: {what} failed: {e}", self.name);
                (VIRTIO_BLK_S_IOERR, 0)
            }
        }
    }

    /// DISCARD / WRITE_ZEROES: a list of segments in the readable data.
    fn discard_or_zero(&mut self, mem: &GuestMemoryMmap, discard: bool, len: u64) -> Result<Outcome, GuestError> {
        let (max_seg, max_sectors) = if discard {
            (MAX_DISCARD_SEG, MAX_DISCARD_SECTORS)
        } else {
            (MAX_WRITE_ZEROES_SEG, MAX_WRITE_ZEROES_SECTORS)
        };
        if len == 0 || len % SEGMENT_SIZE != 0 || len / SEGMENT_SIZE > u64::from(max_seg) {
            return Err(GuestError::BadSegments);
        }
        for i in 0..len / SEGMENT_SIZE {
            let mut raw = [0u8; SEGMENT_SIZE as usize];
            self.copy_from_guest(mem, HEADER_SIZE + i * SEGMENT_SIZE, &mut raw)?;
            let sector = le_u64(&raw, 0);
            let sectors = le_u32(&raw, 8);
            let flags = le_u32(&raw, 12);
            // Unknown flags, and UNMAP on a discard, are UNSUPP (§5.2.6.2).
            if flags & !VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP != 0 || (discard && flags != 0) {
                return Ok((VIRTIO_BLK_S_UNSUPP, 0));
            }
            if sectors > max_sectors {
                return Err(GuestError::BadSegments);
            }
            let bytes = u64::from(sectors) * SECTOR_SIZE;
            let offset = self.check_range(sector, bytes)?;
            let done = if discard {
                self.disk.discard(offset, bytes)
            } else {
                self.disk.write_zeroes(offset, bytes, flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP != 0)
            };
            if done.is_err() {
                return Ok(self.io_outcome(done, if discard { "discard" } else { "write-zeroes" }, 0));
            }
        }
        Ok((VIRTIO_BLK_S_OK, 0))
    }

    /// The descriptors of one direction.
    fn part(&self, writable: bool) -> &[Desc] {
        let readable = self.descs.iter().take_while(|d| !d.writable).count();
        if writable {
            &self.descs[readable..]
        } else {
            &self.descs[..readable]
        }
    }

    /// Fills `self.iovs` with host buffers for bytes `skip..skip + len` of
    /// the readable or writable part of the chain.
    fn gather(&mut self, mem: &GuestMemoryMmap, writable: bool, skip: u64, len: u64) -> Result<(), GuestError> {
        let readable = self.descs.iter().take_while(|d| !d.writable).count();
        let descs = if writable { &self.descs[readable..] } else { &self.descs[..readable] };
        let iovs = &mut self.iovs.0;
        iovs.clear();
        for_each_range(descs, skip, len, |addr, n| {
            for slice in GuestMemoryBackend::get_slices(mem, addr, n as usize) {
                let slice = slice.map_err(|_| GuestError::OutsideMemory)?;
                if writable {
                    // The kernel fills it through the raw pointer (preadv): vm-memory
                    // cannot see that write, so it is marked here.
                    crate::guest_memory::mark_written(&slice);
                }
                iovs.push(libc::iovec { iov_base: slice.ptr_guard_mut().as_ptr().cast(), iov_len: slice.len() });
            }
            Ok(())
        })
    }

    /// Copies bytes `skip..` of the readable part into `buf`.
    fn copy_from_guest(&self, mem: &GuestMemoryMmap, skip: u64, buf: &mut [u8]) -> Result<(), GuestError> {
        let mut done = 0;
        for_each_range(self.part(false), skip, buf.len() as u64, |addr, n| {
            let n = n as usize;
            mem.read_slice(&mut buf[done..done + n], addr).map_err(|_| GuestError::OutsideMemory)?;
            done += n;
            Ok(())
        })
    }

    /// Copies `buf` to the start of the writable part.
    fn copy_to_guest(&self, mem: &GuestMemoryMmap, buf: &[u8]) -> Result<(), GuestError> {
        let mut done = 0;
        for_each_range(self.part(true), 0, buf.len() as u64, |addr, n| {
            let n = n as usize;
            mem.write_slice(&buf[done..done + n], addr).map_err(|_| GuestError::OutsideMemory)?;
            done += n;
            Ok(())
        })
    }
}

/// Calls `f(address, length)` for each piece of bytes `skip..skip + len` of
/// the concatenation of `descs`, in order. The caller made sure the range
/// lies within them.
fn for_each_range(
    descs: &[Desc],
    mut skip: u64,
    mut len: u64,
    mut f: impl FnMut(GuestAddress, u64) -> Result<(), GuestError>,
) -> Result<(), GuestError> {
    for d in descs {
        if len == 0 {
            break;
        }
        let dlen = u64::from(d.len);
        if skip >= dlen {
            skip -= dlen;
            continue;
        }
        let n = (dlen - skip).min(len);
        let addr = d.addr.checked_add(skip).ok_or(GuestError::OutsideMemory)?;
        f(addr, n)?;
        skip = 0;
        len -= n;
    }
    Ok(())
}
