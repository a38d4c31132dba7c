//! Snapshots: a paused VM written to a state file (and its memory, in the same file or
//! one of its own), and a new microvm process built from them instead of booting.
//!
//! What a snapshot holds (docs/snapshot.md): the machine's shape (what the command line
//! must describe again), every vCPU's architectural state, the in-kernel interrupt
//! controllers, PIT and clock, and guest RAM. The state is framed by the `snapshot`
//! crate (magic, format version, CRC); RAM is written sparse and mapped back MAP_PRIVATE.

pub mod dirty;
mod host_check;
mod live;
pub mod memory_file;
pub mod memory_tag;
pub mod prefetch;
pub mod rebase;
mod shape;
mod uri;
mod vm_state;

pub use host_check::{check_host, check_this_host, HostMismatch};
pub use shape::{device_kind, MachineShape, ShapeMismatch};
pub use snapshot::Header;
pub use uri::{parse_file_uri, UriError};
pub use vm_state::{ClockPolicy, RestoredClock, VmState, VmStateError};

use crate::vcpu::{VcpuError, VcpuHandle, VcpuState, XsaveFits};
use devices::bus::{Bus, SavedDevice};
use devices::guest_memory::GuestMemoryMmap;
use dirty::{DirtyError, DirtyPages};
use memory_file::{MemoryFileError, WrittenMemory};
use memory_tag::MemoryTag;
use serde::{Deserialize, Serialize};
use snapshot::{FormatError, MemoryPlacement, HEADER_LEN};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};

/// How long each vCPU may take to hand over its state.
const SAVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything a snapshot holds but guest RAM.
#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub shape: MachineShape,
    pub vcpus: Vec<VcpuState>,
    pub vm: VmState,
    /// Where `acpi=on` put its tables (they are in guest RAM): (RSDP, end).
    pub acpi_tables: Option<(u64, u64)>,
    /// The front end's own description of the machine, for a restore that gets no
    /// command line (Firecracker's `/snapshot/load`: its `GET /vm/config` JSON); `None`
    /// from QEMU's `migrate`, whose restore names the machine on its command line.
    pub front_end_config: Option<String>,
    /// Every device on the port bus, then on the MMIO bus, in address order.
    pub devices: DevicesState,
    /// Full or diff: stored after the rest (format version 2), so that version 1 files,
    /// which lack it, still decode (as full snapshots).
    #[serde(skip)]
    pub lineage: Lineage,
}

/// What a snapshot's memory is relative to other snapshots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// A diff snapshot: its memory holds only the pages written since the snapshot with
    /// this state CRC (saved or restored by the same VM), and must be merged into that
    /// one's memory file (`microvm rebase-snap`) before it can be restored.
    pub diff_of: Option<u32>,
}

/// The format version that added [`Lineage`].
const LINEAGE_SINCE: u32 = 2;

/// Frames `snapshot` in the current format (the state, then its lineage): header and
/// content, to write at the placement's base.
pub fn encode(snapshot: &Snapshot, placement: MemoryPlacement, writer: &str) -> Result<(Vec<u8>, Header), FormatError> {
    snapshot::encode(&(snapshot, &snapshot.lineage), placement, writer)
}

/// Decodes a state file's bytes (from its header on), of any format this microvm reads.
pub fn decode(bytes: &[u8]) -> Result<(Header, Snapshot), FormatError> {
    let (header, mut snapshot, lineage) = snapshot::decode_extended::<Snapshot, Lineage>(bytes, LINEAGE_SINCE)?;
    snapshot.lineage = lineage;
    Ok((header, snapshot))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DevicesState {
    pub pio: Vec<SavedDevice>,
    pub mmio: Vec<SavedDevice>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot {}: {source}", .path.display())]
    Open { path: PathBuf, source: std::io::Error },
    #[error("snapshot {}: {source}", .path.display())]
    Format { path: PathBuf, source: FormatError },
    #[error("snapshot {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("snapshot {}: {source}", .path.display())]
    Memory { path: PathBuf, source: MemoryFileError },
    #[error(transparent)]
    Shape(#[from] ShapeMismatch),
    #[error("cannot restore the snapshot on this host: {0}")]
    Host(#[from] HostMismatch),
    #[error("snapshot {}: guest memory is not in it (saved with x-ignore-shared): restore with the same memory-backend-file (mem-path=FILE)", .0.display())]
    NoMemory(PathBuf),
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
    #[error(transparent)]
    VmState(#[from] VmStateError),
    #[error(transparent)]
    Kvm(Box<crate::kvm::KvmError>),
    #[error("cannot list the MSRs to save: {0}")]
    MsrList(#[source] kvm_ioctls::Error),
    #[error("device state: {0}")]
    Device(#[from] devices::state::StateError),
    #[error("the snapshot has {saved} vCPU states for {now} vCPUs")]
    VcpuCount { saved: usize, now: usize },
    #[error("{0}")]
    Diff(#[from] DiffRefused),
    #[error("snapshot memory {}: {source}", .path.display())]
    Dirty { path: PathBuf, source: DirtyError },
    #[error("snapshot memory {}: {source}", .path.display())]
    Tag { path: PathBuf, source: std::io::Error },
    #[error("snapshot memory {} holds only the pages of diff snapshot {snapshot:08x}: merge it into the memory file of its base ({base:08x}) first, with `microvm rebase-snap --base-file BASE --diff-file {}`, and load the merged file", .path.display(), .path.display())]
    Unmerged { path: PathBuf, snapshot: u32, base: u32 },
    #[error("snapshot memory {} is of snapshot {found:08x}, not of this state file's {state:08x}", .path.display())]
    OtherMemory { path: PathBuf, found: u32, state: u32 },
    #[error("snapshot memory {} has no microvm tag, so it cannot be the merged memory of diff snapshot {state:08x}: merge it with `microvm rebase-snap`", .path.display())]
    UntaggedDiff { path: PathBuf, state: u32 },
}

/// Why a diff snapshot cannot be taken now.
#[derive(Debug, thiserror::Error)]
pub enum DiffRefused {
    /// Firecracker's message for the same refusal.
    #[error("Diff snapshots are not allowed on uVMs with dirty page tracking disabled.")]
    NotTracking,
    #[error("a diff snapshot needs a base: take a Full snapshot first (or restore one with dirty page tracking on)")]
    NoBase,
    #[error("a diff snapshot writes the dirtied pages of guest memory: not with x-ignore-shared")]
    NeedsFile,
    #[error("diff snapshots are not supported with {0}: the kernel writes guest memory for it, and neither KVM's dirty log nor microvm sees those writes")]
    WrittenBehind(String),
}

/// Where a snapshot goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotTarget {
    pub path: PathBuf,
    /// Bytes before the state in its file (QEMU's `file:PATH,offset=N`).
    pub offset: u64,
    pub memory: MemoryTarget,
    /// Stored as [`Snapshot::front_end_config`].
    pub front_end_config: Option<String>,
    /// Only the pages written since the last snapshot (Firecracker's `Diff`, QMP's
    /// `x-diff-snapshot`): needs dirty-page tracking, and memory that is written.
    pub diff: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemoryTarget {
    /// After the state, page-aligned, in the same file (QEMU's `migrate file:`).
    Inline,
    /// A file of its own (Firecracker's `mem_file_path`).
    File(PathBuf),
    /// Not written: guest RAM is a shared backend file that outlives the process
    /// (QEMU's `x-ignore-shared`).
    Shared,
}

/// What a snapshot took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaveReport {
    pub state_bytes: u64,
    pub memory: WrittenMemory,
    pub took: Duration,
}

/// What a running VM keeps so that it can be saved: the KVM objects, guest memory, and
/// the machine's description.
pub struct Snapshotter {
    pub(crate) kvm: kvm_ioctls::Kvm,
    pub(crate) vm: kvm_ioctls::VmFd,
    pub(crate) mem: GuestMemoryMmap,
    pub(crate) shape: MachineShape,
    pub(crate) acpi_tables: Option<(u64, u64)>,
    /// A file-backed `share=on` memory backend: another process can map the same RAM.
    pub(crate) shared_memory: bool,
    pub(crate) pio: Arc<Bus>,
    pub(crate) mmio: Arc<Bus>,
    /// RAM is anonymous (no backend): a live restore maps the file over it.
    pub(crate) anonymous_memory: bool,
    /// This host's TSC frequency as KVM told the first vCPU at set-up.
    pub(crate) host_tsc_khz: Option<u32>,
    /// RAM is a named backend file (shared or not).
    pub(crate) file_backed: bool,
    /// With dirty-page tracking: the state CRC of the last snapshot saved or restored
    /// (with its memory written, not x-ignore-shared), which the dirty logs count from;
    /// `None` before any, or after a save failed (the logs may have been cleared by it).
    pub(crate) diff_base: std::cell::Cell<Option<u32>>,
}

impl Snapshotter {
    /// The machine this VM is, which a snapshot loaded into it must be.
    pub fn shape(&self) -> &MachineShape {
        &self.shape
    }

    /// Whether a named file backend holds RAM (x-ignore-shared snapshots load into it).
    pub fn file_backend(&self) -> bool {
        self.file_backed
    }

    /// Whether guest RAM is a shared backend another process can map (x-ignore-shared).
    pub fn memory_is_shared(&self) -> bool {
        self.shared_memory
    }

    /// Saves the VM; every vCPU must be parked (the VM paused) and stays so.
    pub fn save(&self, vcpus: &[VcpuHandle], target: &SnapshotTarget) -> Result<SaveReport, SnapshotError> {
        let started = Instant::now();
        let tracking = devices::guest_memory::is_tracked(&self.mem);
        // A refused diff clears nothing: the base stays.
        let diff_of =
            if target.diff { Some(check_diff(&self.shape, target, tracking, self.diff_base.get())?) } else { None };
        // From here a failure may have cleared the logs: no diff may follow it.
        self.diff_base.set(None);
        XsaveFits::check(&self.kvm)?;
        let msrs: Arc<[u32]> = self.kvm.get_msr_index_list().map_err(SnapshotError::MsrList)?.as_slice().into();
        let vcpus =
            vcpus.iter().map(|v| v.save(msrs.clone(), SAVE_TIMEOUT).map(|s| *s)).collect::<Result<Vec<_>, _>>()?;
        let snapshot = Snapshot {
            shape: self.shape.clone(),
            vcpus,
            vm: VmState::save(&self.vm, self.shape.pit)?,
            acpi_tables: self.acpi_tables,
            front_end_config: target.front_end_config.clone(),
            devices: DevicesState { pio: self.pio.save_all()?, mmio: self.mmio.save_all()? },
            lineage: Lineage { diff_of },
        };
        let mem_len = self.mem.iter().map(|r| r.len()).sum::<u64>();
        let placement = match target.memory {
            MemoryTarget::Inline => {
                let align = if tracking { MERGEABLE_MEMORY_ALIGN } else { snapshot::MEMORY_ALIGN };
                MemoryPlacement::Inline { base: target.offset, len: mem_len, align }
            }
            _ => MemoryPlacement::Separate { len: mem_len },
        };
        let path = &target.path;
        let (bytes, header) = encode(&snapshot, placement, env!("CARGO_PKG_VERSION"))
            .map_err(|source| SnapshotError::Format { path: path.clone(), source })?;
        let crc = state_crc(&bytes);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SnapshotError::Io { path, source }
        };
        let file = create(path)?;
        file.write_all_at(&bytes, target.offset).map_err(io(path))?;
        let lineage = (crc, diff_of);
        let memory = match (&target.memory, header.memory_offset) {
            (MemoryTarget::Inline, Some(off)) => {
                let at = target.offset + off;
                file.set_len(at + mem_len).map_err(io(path))?;
                // Tagged only when a diff may follow (tracking): other files keep their layout.
                self.write_ram((&file, at, path), tracking, lineage)?
            }
            (MemoryTarget::File(mem_path), _) => {
                let mem_file = create(mem_path)?;
                mem_file.set_len(mem_len).map_err(io(mem_path))?;
                self.write_ram((&mem_file, 0, mem_path), true, lineage)?
            }
            _ => WrittenMemory::default(),
        };
        Ok(SaveReport { state_bytes: bytes.len() as u64, memory, took: started.elapsed() })
    }
}

/// Where inline memory starts in a snapshot taken with dirty-page tracking: a base and its
/// diffs then lay memory out at the same offset (their states differ by a few bytes), so
/// `rebase-snap` merges them by copying the diff's data extents, its state included.
const MERGEABLE_MEMORY_ALIGN: u64 = 1 << 20;

impl Snapshotter {
    /// Writes guest RAM to `file` at `at` (all of it, or a diff's dirty pages), then with
    /// `tag` the memory tag after it; `lineage`: this snapshot's CRC and its diff base.
    /// With tracking, both dirty logs are read and cleared (for a full snapshot too: the
    /// next diff counts from here) and this snapshot becomes the base.
    fn write_ram(
        &self,
        (file, at, path): (&File, u64, &Path),
        tag: bool,
        (crc, diff_of): (u32, Option<u32>),
    ) -> Result<WrittenMemory, SnapshotError> {
        let tracking = devices::guest_memory::is_tracked(&self.mem);
        let mem_len = self.mem.iter().map(|r| r.len()).sum::<u64>();
        let dirty_error = |source| SnapshotError::Dirty { path: path.to_path_buf(), source };
        let dirty =
            if tracking { DirtyPages::take(&self.vm, &self.mem).map_err(dirty_error)? } else { Default::default() };
        let (written, memory_tag) = match diff_of {
            Some(base) => {
                let data = dirty.write(&self.mem, file, at).map_err(dirty_error)?;
                (WrittenMemory { data, zero: mem_len - data }, MemoryTag::diff(crc, base))
            }
            None => (write_memory(&self.mem, file, at, path)?, MemoryTag::full(crc)),
        };
        if tag {
            memory_tag
                .write(file, at + mem_len)
                .map_err(|source| SnapshotError::Tag { path: path.to_path_buf(), source })?;
        }
        if tracking {
            self.diff_base.set(Some(crc));
        }
        Ok(written)
    }
}

/// Whether a diff of the machine `shape` can be taken to `target`; the base it is a diff of.
fn check_diff(
    shape: &MachineShape,
    target: &SnapshotTarget,
    tracking: bool,
    base: Option<u32>,
) -> Result<u32, DiffRefused> {
    if !tracking {
        return Err(DiffRefused::NotTracking);
    }
    if target.memory == MemoryTarget::Shared {
        return Err(DiffRefused::NeedsFile);
    }
    // Kernel vhost devices (and virtiofsd) write guest RAM through their own mapping.
    if let Some(kind) = shape.devices.iter().find(|d| d.contains("vhost")) {
        return Err(DiffRefused::WrittenBehind(kind.clone()));
    }
    base.ok_or(DiffRefused::NoBase)
}

/// The CRC32 field of a framed state (what names a snapshot).
fn state_crc(framed: &[u8]) -> u32 {
    u32::from_le_bytes([framed[12], framed[13], framed[14], framed[15]])
}

fn create(path: &Path) -> Result<File, SnapshotError> {
    File::options()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| SnapshotError::Open { path: path.to_path_buf(), source })
}

fn write_memory(mem: &GuestMemoryMmap, file: &File, at: u64, path: &Path) -> Result<WrittenMemory, SnapshotError> {
    memory_file::write_memory(mem, file, at)
        .map_err(|source| SnapshotError::Memory { path: path.to_path_buf(), source })
}

/// A snapshot read and checked against the restoring command line, before anything of
/// the new VM exists.
pub struct LoadedSnapshot {
    pub header: Header,
    pub snapshot: Snapshot,
    /// The file holding guest RAM and where it starts; `None`: RAM is a shared backend.
    pub memory: Option<(File, u64)>,
    pub path: PathBuf,
    pub clock: ClockPolicy,
    /// This host was already found able to restore it ([`check_this_host`]): a clone
    /// server checks once for all its clones, which then skip KVM_GET_SUPPORTED_CPUID
    /// (~0.3 ms of the ~1.3 ms a clone takes here).
    pub host_checked: bool,
    /// The header's CRC32 of the state: names this snapshot (a page list must match it).
    pub state_crc: u32,
}

/// Where to restore from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotSource {
    pub path: PathBuf,
    pub offset: u64,
    /// Guest RAM's own file, when it is not in the state file.
    pub memory: Option<PathBuf>,
    /// How the guest's clock goes on.
    pub clock: ClockPolicy,
}

/// Reads a state file at `offset` of `path`: header, checksum, content.
pub fn read(path: &Path, offset: u64) -> Result<(File, Header, Snapshot), SnapshotError> {
    read_with_crc(path, offset).map(|(file, header, snapshot, _)| (file, header, snapshot))
}

/// [`read`], and the state's CRC32 (the snapshot's name) from the header it checked.
fn read_with_crc(path: &Path, offset: u64) -> Result<(File, Header, Snapshot, u32), SnapshotError> {
    let file = File::open(path).map_err(|source| SnapshotError::Open { path: path.to_path_buf(), source })?;
    let format = |source| SnapshotError::Format { path: path.to_path_buf(), source };
    let io = |source| SnapshotError::Io { path: path.to_path_buf(), source };
    let mut head = vec![0u8; HEADER_LEN];
    let got = read_up_to(&file, &mut head, offset).map_err(io)?;
    let header = snapshot::decode_header(&head[..got]).map_err(format)?;
    let mut bytes = vec![0u8; HEADER_LEN + header.content_len as usize];
    let got = read_up_to(&file, &mut bytes, offset).map_err(io)?;
    let (header, snapshot) = decode(&bytes[..got]).map_err(format)?;
    Ok((file, header, snapshot, state_crc_of(&bytes)))
}

/// The CRC32 field of a header (bytes 12..16).
fn state_crc_of(header: &[u8]) -> u32 {
    u32::from_le_bytes([header[12], header[13], header[14], header[15]])
}

/// Reads into `buf` at `at` until it is full or the file ends; returns how much it read.
fn read_up_to(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], at + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Reads a snapshot for a restore and checks that `shape` (the restoring command line's
/// machine) is the saved one. `file_backend`: guest RAM will be a named backend file,
/// which holds the memory of a snapshot saved without it (x-ignore-shared).
pub fn load(
    source: &SnapshotSource,
    shape: &MachineShape,
    file_backend: bool,
) -> Result<LoadedSnapshot, SnapshotError> {
    let (file, header, snapshot, state_crc) = read_with_crc(&source.path, source.offset)?;
    snapshot.shape.check(shape)?;
    if snapshot.vcpus.len() != usize::from(shape.vcpu_count) {
        return Err(SnapshotError::VcpuCount { saved: snapshot.vcpus.len(), now: usize::from(shape.vcpu_count) });
    }
    let memory = match (&source.memory, header.memory_offset) {
        (Some(path), _) => {
            let file = File::open(path).map_err(|source| SnapshotError::Open { path: path.clone(), source })?;
            check_memory_tag(&file, path, header.memory_len, state_crc, snapshot.lineage)?;
            Some((file, 0))
        }
        (None, Some(off)) => {
            let at = source.offset + off;
            check_memory_tag(&file, &source.path, at + header.memory_len, state_crc, snapshot.lineage)?;
            Some((file, at))
        }
        (None, None) if file_backend => None,
        (None, None) => return Err(SnapshotError::NoMemory(source.path.clone())),
    };
    Ok(LoadedSnapshot {
        header,
        snapshot,
        memory,
        path: source.path.clone(),
        clock: source.clock,
        host_checked: false,
        state_crc,
    })
}

/// Checks that `file`, whose guest memory ends at `tag_at`, holds all of the guest memory
/// of the snapshot named `state` (its tag, `memory_tag.rs`): a diff's own file, unmerged,
/// is refused, and so is another snapshot's memory. A file without a tag (older microvm,
/// another tool, a snapshot taken without tracking) is taken as it is for a full one.
fn check_memory_tag(file: &File, path: &Path, tag_at: u64, state: u32, lineage: Lineage) -> Result<(), SnapshotError> {
    let path = path.to_path_buf();
    match MemoryTag::read(file, tag_at) {
        Err(source) => Err(SnapshotError::Tag { path, source }),
        Ok(Some(tag)) if tag.snapshot != state => Err(SnapshotError::OtherMemory { path, found: tag.snapshot, state }),
        Ok(Some(tag)) if !tag.complete => {
            Err(SnapshotError::Unmerged { path, snapshot: state, base: tag.base.unwrap_or_default() })
        }
        Ok(Some(_)) => Ok(()),
        Ok(None) if lineage.diff_of.is_some() => Err(SnapshotError::UntaggedDiff { path, state }),
        Ok(None) => Ok(()),
    }
}

/// The CRC32 field of the header at `offset` of `path` (bytes 12..16, checked by `read`).
pub fn read_state_crc(path: &Path, offset: u64) -> Result<u32, SnapshotError> {
    let io = |source| SnapshotError::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io)?;
    let mut crc = [0u8; 16];
    file.read_exact_at(&mut crc[12..], offset + 12).map_err(io)?;
    Ok(state_crc_of(&crc))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The refusals come in Firecracker's order (tracking first), a vhost device is
    /// named, and only then is a missing base the reason.
    #[test]
    fn a_diff_is_refused_for_each_reason_in_turn() {
        let mut shape = MachineShape::of(&crate::config::VmConfig::new(crate::config::KernelConfig {
            path: "k".into(),
            cmdline: String::new(),
            initrd: None,
        }));
        let target =
            |memory| SnapshotTarget { path: "s".into(), offset: 0, memory, front_end_config: None, diff: true };
        let file = target(MemoryTarget::File("m".into()));
        assert!(matches!(check_diff(&shape, &file, false, Some(1)), Err(DiffRefused::NotTracking)));
        assert!(matches!(
            check_diff(&shape, &target(MemoryTarget::Shared), true, Some(1)),
            Err(DiffRefused::NeedsFile)
        ));
        assert!(matches!(check_diff(&shape, &file, true, None), Err(DiffRefused::NoBase)));
        assert_eq!(check_diff(&shape, &target(MemoryTarget::Inline), true, Some(7)).unwrap(), 7);
        shape.devices.push("vhost-vsock-device".into());
        let e = check_diff(&shape, &file, true, Some(1)).unwrap_err();
        assert!(e.to_string().contains("vhost-vsock-device"), "{e}");
    }
}
