//! Working-set prefetch: the guest pages a restored VM touched in its first moments,
//! listed beside the snapshot (`FILE.pages`), so that later restores of it fault them in
//! before any vCPU runs instead of one EPT violation and page-cache read at a time.
//! The pages it wrote are listed as such: a later restore copies them out of the file
//! before the guest runs, so that the guest's first write to each is not one more fault.
//!
//! Recording reads another process's page table (`/proc/PID/pagemap`, the "present" bit
//! of each page of its mapping of the snapshot file, found in `/proc/PID/maps`): a page
//! is present once the guest read or wrote it, whether or not the file was already in
//! the page cache, which is what `mincore` would tell instead. It runs outside the VMM
//! (`microvm snapshot-pages PID FILE`), so the restored VM needs no timer, thread or
//! system call for it; "its first moments" are until the recorder is called.
//!
//! The list names its snapshot: the state's CRC32 (which covers every register and the
//! clock, so no two snapshots share it) and the memory's length. A list that does not
//! match, or cannot be read, is ignored with one warning: it never changes what the guest
//! sees, only which pages are read early.

use crate::vcpu::Vcpu;
use devices::guest_memory::GuestMemoryMmap;
use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};

const PAGE: u64 = 4096;
/// The list's first word; then its version: 2 marks the written runs, 1 (read still)
/// has none.
const MAGIC: &str = "microvm-pages ";
const VERSION: &str = "2";
/// madvise(2): fault the range in for reading, or writing (Linux 5.14); not in every
/// libc crate yet.
const MADV_POPULATE_READ: libc::c_int = 22;
const MADV_POPULATE_WRITE: libc::c_int = 23;
/// pagemap entry bit 63: the page is present in RAM (mapped in this process).
const PAGEMAP_PRESENT: u64 = 1 << 63;
/// pagemap entry bit 61: a file page (or shared anonymous). A present page of a private
/// file mapping without it is the process's own copy: the guest wrote it.
const PAGEMAP_FILE: u64 = 1 << 61;

/// Which snapshot a list belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub state_crc: u32,
    pub memory_len: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PrefetchError {
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("process {0} has no mapping of the snapshot's memory: is it a restore of this snapshot?")]
    NotMapped(i32),
    #[error("{path}: not a page list of microvm: {why}", path = .0.display(), why = .1)]
    Format(PathBuf, &'static str),
    #[error("{}: the page list is of another snapshot (state CRC {found:08x}, this one's {expected:08x}); record it again", .path.display())]
    Mismatch { path: PathBuf, found: u32, expected: u32 },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PrefetchError + '_ {
    move |source| PrefetchError::Io { path: path.to_path_buf(), source }
}

/// Where the list of `snapshot` is: beside it, `FILE.pages`.
pub fn list_path(snapshot: &Path) -> PathBuf {
    let mut name = snapshot.as_os_str().to_owned();
    name.push(".pages");
    PathBuf::from(name)
}

/// Runs of pages, (first page, count), in memory order, counting from the memory's start.
pub type Runs = Vec<(u64, u64)>;

/// A snapshot's working set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageList {
    /// Every page the guest touched.
    pub runs: Runs,
    /// Those of them it wrote (a subset).
    pub written: Runs,
}

impl PageList {
    pub fn pages(&self) -> u64 {
        self.runs.iter().map(|(_, n)| n).sum()
    }
}

/// The pages process `pid` has present in its mapping of `memory_file` (guest RAM from
/// byte `memory_offset` of it): what its guest touched, and which of them it wrote.
pub fn record(pid: i32, memory_file: &Path, memory_offset: u64) -> Result<PageList, PrefetchError> {
    let meta = std::fs::metadata(memory_file).map_err(io(memory_file))?;
    let maps_path = PathBuf::from(format!("/proc/{pid}/maps"));
    let maps = std::fs::read_to_string(&maps_path).map_err(io(&maps_path))?;
    let pagemap_path = PathBuf::from(format!("/proc/{pid}/pagemap"));
    let pagemap = File::open(&pagemap_path).map_err(io(&pagemap_path))?;
    let (mut pages, mut written) = (Vec::new(), Vec::new());
    for line in maps.lines() {
        // start-end perms offset dev inode path
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [range, _, offset, dev, inode, ..] = fields[..] else { continue };
        if inode.parse::<u64>().ok() != Some(meta.ino()) || !same_dev(dev, meta.dev()) {
            continue;
        }
        let (Some((start, end)), Ok(offset)) = (parse_range(range), u64::from_str_radix(offset, 16)) else {
            continue;
        };
        let count = (end - start) / PAGE;
        let mut entries = vec![0u8; count as usize * 8];
        pagemap.read_exact_at(&mut entries, start / PAGE * 8).map_err(io(&pagemap_path))?;
        for (i, entry) in entries.chunks_exact(8).enumerate() {
            let entry = u64::from_le_bytes(entry.try_into().unwrap_or_default());
            let file_byte = offset + i as u64 * PAGE;
            if entry & PAGEMAP_PRESENT != 0 && file_byte >= memory_offset {
                pages.push((file_byte - memory_offset) / PAGE);
                if entry & PAGEMAP_FILE == 0 {
                    written.push((file_byte - memory_offset) / PAGE);
                }
            }
        }
    }
    if pages.is_empty() && !maps.lines().any(|l| l.split_whitespace().nth(4) == Some(&meta.ino().to_string())) {
        return Err(PrefetchError::NotMapped(pid));
    }
    pages.sort_unstable();
    written.sort_unstable();
    Ok(PageList { runs: runs(&pages), written: runs(&written) })
}

/// /proc/PID/maps writes the device as hex "major:minor".
fn same_dev(field: &str, dev: u64) -> bool {
    let Some((major, minor)) = field.split_once(':') else { return false };
    let (Ok(major), Ok(minor)) = (u64::from_str_radix(major, 16), u64::from_str_radix(minor, 16)) else {
        return false;
    };
    libc::makedev(major as u32, minor as u32) == dev
}

fn parse_range(range: &str) -> Option<(u64, u64)> {
    let (start, end) = range.split_once('-')?;
    Some((u64::from_str_radix(start, 16).ok()?, u64::from_str_radix(end, 16).ok()?))
}

/// Sorted page numbers → runs.
fn runs(pages: &[u64]) -> Runs {
    let mut runs: Runs = Vec::new();
    for &page in pages {
        match runs.last_mut() {
            Some((first, count)) if *first + *count == page => *count += 1,
            Some((first, count)) if *first + *count > page => {}
            _ => runs.push((page, 1)),
        }
    }
    runs
}

/// The list's text: the magic, the identity, then one run a line, every page's and then
/// the written pages' (`w FIRST COUNT`).
pub fn format_list(identity: Identity, list: &PageList) -> String {
    let mut out = format!("{MAGIC}{VERSION} state-crc={:08x} memory={}\n", identity.state_crc, identity.memory_len);
    for (first, count) in &list.runs {
        let _ = writeln!(out, "{first} {count}");
    }
    for (first, count) in &list.written {
        let _ = writeln!(out, "w {first} {count}");
    }
    out
}

/// Reads the list at `path` for the snapshot `expected`.
pub fn read_list(path: &Path, expected: Identity) -> Result<PageList, PrefetchError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let format = |why| PrefetchError::Format(path.to_path_buf(), why);
    let mut lines = text.lines();
    let head = lines.next().ok_or(format("empty"))?;
    let rest = ["1", VERSION]
        .iter()
        .find_map(|v| head.strip_prefix(MAGIC)?.strip_prefix(v)?.strip_prefix(' '))
        .ok_or(format("no \"microvm-pages 1\" or \"microvm-pages 2\" line first"))?;
    let mut found = Identity { state_crc: 0, memory_len: 0 };
    for word in rest.split_whitespace() {
        match word.split_once('=') {
            Some(("state-crc", v)) => found.state_crc = u32::from_str_radix(v, 16).map_err(|_| format("bad CRC"))?,
            Some(("memory", v)) => found.memory_len = v.parse().map_err(|_| format("bad memory length"))?,
            _ => return Err(format("unknown field in the first line")),
        }
    }
    if found != expected {
        return Err(PrefetchError::Mismatch {
            path: path.to_path_buf(),
            found: found.state_crc,
            expected: expected.state_crc,
        });
    }
    let pages = expected.memory_len / PAGE;
    let mut list = PageList::default();
    for line in lines {
        let (line, to) = match line.strip_prefix("w ") {
            Some(rest) => (rest, &mut list.written),
            None => (line, &mut list.runs),
        };
        let mut words = line.split_whitespace().map(str::parse::<u64>);
        let (Some(Ok(first)), Some(Ok(count)), None) = (words.next(), words.next(), words.next()) else {
            return Err(format("a run is two numbers, after a \"w\" for written pages"));
        };
        if first.checked_add(count).map_or(true, |end| end > pages) {
            return Err(format("a run is outside guest memory"));
        }
        to.push((first, count));
    }
    Ok(list)
}

/// A piece of a run inside one RAM range: its guest address, its host address in `mem`'s
/// mapping and its length.
pub(crate) struct Chunk {
    pub gpa: u64,
    pub host: *mut u8,
    pub len: u64,
}

/// The pieces of `runs` (counted from the memory's start, across the 32-bit gap) in
/// `mem`'s RAM ranges: a run may cross from one range into the next.
pub(crate) fn chunks(mem: &GuestMemoryMmap, runs: &Runs) -> Vec<Chunk> {
    let mut out = Vec::new();
    for &(first, count) in runs {
        let (mut at, mut left) = (first * PAGE, count * PAGE);
        let mut region_start = 0;
        for region in mem.iter() {
            let len = region.len();
            if left > 0 && at >= region_start && at < region_start + len {
                let n = left.min(region_start + len - at);
                let host = region.as_ptr().wrapping_add((at - region_start) as usize);
                out.push(Chunk { gpa: region.start_addr().0 + (at - region_start), host, len: n });
                at += n;
                left -= n;
            }
            region_start += len;
        }
    }
    out
}

/// Applies `advice` to the host range of every run of `runs` in `mem` (mapped from the
/// snapshot); stops at the first refusal. Returns the bytes advised.
fn advise(mem: &GuestMemoryMmap, runs: &Runs, advice: libc::c_int) -> u64 {
    let mut advised = 0;
    for Chunk { host, len, .. } in chunks(mem, runs) {
        // SAFETY: [host, host + len) lies inside one region's mapping (`chunks`), and
        // these advices only read the file into it, or copy its pages unchanged into
        // this process's own (MADV_POPULATE_WRITE on a private mapping).
        if unsafe { libc::madvise(host.cast(), len as usize, advice) } != 0 {
            return advised;
        }
        advised += len;
    }
    advised
}

/// Starts reading the pages of `runs` into the page cache (MADV_WILLNEED: the kernel
/// queues the reads and returns), so that a cold cache is being filled while the VM is
/// still being set up and the guest starts. Returns the bytes advised.
pub fn read_ahead(mem: &GuestMemoryMmap, runs: &Runs) -> u64 {
    advise(mem, runs, libc::MADV_WILLNEED)
}

/// Faults the pages of `runs` into this process's page table for reading
/// (MADV_POPULATE_READ), so that the guest's first accesses cost an EPT fill only and
/// not a host page fault each; the main thread does it while the vCPUs already run
/// (a page the guest reaches first it faults in itself). Kernels before 5.14 lack the
/// advice: the read-ahead alone then. Returns the bytes faulted in.
pub fn prefault(mem: &GuestMemoryMmap, runs: &Runs) -> u64 {
    advise(mem, runs, MADV_POPULATE_READ)
}

/// Copies the pages of `runs` out of the file into this process's own memory
/// (MADV_POPULATE_WRITE on the private mapping: what the guest's first write to each
/// would do, one fault each), so that KVM maps them writable at once. Returns the bytes
/// copied; none before Linux 5.14.
pub fn populate_written(mem: &GuestMemoryMmap, runs: &Runs) -> u64 {
    advise(mem, runs, MADV_POPULATE_WRITE)
}

/// Before the vCPUs run: the pages the guest wrote are copied out of the file, then every
/// listed page is mapped into the second-level page table through `vcpu`
/// (KVM_PRE_FAULT_MEMORY), so that the guest's first access to each is no exit. True if
/// all were mapped; false where KVM refused (one debug line), and the caller faults them
/// into this process's page table instead while the guest runs ([`prefault`]).
pub(crate) fn map_ahead(vcpu: &Vcpu, mem: &GuestMemoryMmap, list: &PageList) -> bool {
    let copied = populate_written(mem, &list.written);
    let mut mapped = 0;
    for Chunk { gpa, len, .. } in chunks(mem, &list.runs) {
        if let Err(e) = vcpu.pre_fault_memory(gpa, len) {
            log::debug!("prefetch: KVM_PRE_FAULT_MEMORY at {gpa:#x}: {e}; the guest faults the pages in itself");
            return false;
        }
        mapped += len;
    }
    log::debug!("prefetch: {copied} bytes copied for writing, {mapped} bytes mapped for the guest before it runs");
    true
}

/// The working-set list beside `loaded`'s file, if there is one it can use; a list that
/// cannot be used is one warning, and the restore goes on without it.
pub fn listed(loaded: &super::LoadedSnapshot) -> Option<PageList> {
    let path = list_path(&loaded.path);
    if !path.exists() {
        return None;
    }
    let identity = Identity { state_crc: loaded.state_crc, memory_len: loaded.header.memory_len };
    read_list(&path, identity).map_err(|e| log::warn!("prefetch: {e}; restoring without it")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: Identity = Identity { state_crc: 0x1234_abcd, memory_len: 64 << 20 };

    #[test]
    fn pages_become_runs_and_the_list_reads_back() {
        assert_eq!(runs(&[0, 1, 2, 5, 7, 8]), vec![(0, 3), (5, 1), (7, 2)]);
        let dir = std::env::temp_dir().join(format!("microvm-pages-{}", std::process::id()));
        let list = PageList { runs: vec![(0, 3), (100, 2)], written: vec![(1, 1)] };
        std::fs::write(&dir, format_list(ID, &list)).unwrap();
        assert_eq!(read_list(&dir, ID).unwrap(), list);
        // Lists of the first version (no written runs) still read.
        std::fs::write(&dir, "microvm-pages 1 state-crc=1234abcd memory=67108864\n0 3\n").unwrap();
        assert_eq!(read_list(&dir, ID).unwrap(), PageList { runs: vec![(0, 3)], written: vec![] });
        let other = Identity { state_crc: 1, ..ID };
        let e = read_list(&dir, other).unwrap_err().to_string();
        assert!(e.contains("another snapshot") && e.contains("1234abcd"), "{e}");
        std::fs::write(&dir, format_list(ID, &PageList { runs: vec![(16383, 2)], written: vec![] })).unwrap();
        assert!(read_list(&dir, ID).unwrap_err().to_string().contains("outside guest memory"));
        std::fs::write(&dir, "pages\n").unwrap();
        assert!(read_list(&dir, ID).unwrap_err().to_string().contains("not a page list"));
        std::fs::remove_file(&dir).unwrap();
    }

    #[test]
    fn prefault_reads_the_listed_pages_of_a_mapped_file() {
        let size = 64 << 20;
        let path = std::env::temp_dir().join(format!("microvm-prefault-{}", std::process::id()));
        let file = File::options().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        file.set_len(size).unwrap();
        file.write_all_at(&[9u8; 4096], 5 * PAGE).unwrap();
        let mem = super::super::memory_file::map_memory(&file, 0, size, false).unwrap();
        assert_eq!(prefault(&mem, &vec![(4, 3)]), 3 * PAGE);
        assert_eq!(populate_written(&mem, &vec![(9, 1)]), PAGE);
        let mine = record(std::process::id() as i32, &path, 0).unwrap();
        assert!(mine.runs.iter().any(|&(first, count)| first <= 5 && 5 < first + count), "{mine:?}");
        // Page 9 is this process's own copy now, the read ones are the file's.
        assert_eq!(mine.written, vec![(9, 1)], "{mine:?}");
        assert!(mine.runs.iter().any(|&(first, count)| first <= 9 && 9 < first + count), "{mine:?}");
        std::fs::remove_file(&path).unwrap();
    }
}
