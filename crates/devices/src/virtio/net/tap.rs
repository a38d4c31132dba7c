//! A TAP interface opened through /dev/net/tun, as QEMU's `-netdev tap`
//! with `script=no`: we attach to (or create) the interface and exchange
//! frames with it; configuring it (address, link up, bridge) is the host's
//! business.
//!
//! Every frame crossing the fd carries a 12-byte virtio-net header
//! (`IFF_VNET_HDR` + `TUNSETVNETHDRSZ`): the very `virtio_net_hdr_v1` the
//! guest driver reads and writes, so checksum and segmentation offload
//! metadata pass through the device untouched.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

const TUN_PATH: &str = "/dev/net/tun";
/// Size of `virtio_net_hdr_v1`: the legacy 10-byte header plus num_buffers.
pub const VNET_HDR_LEN: usize = 12;
/// Name template the kernel fills in when no name is given (QEMU's too).
const DEFAULT_NAME: &str = "tap%d";

/// Why a tap could not be opened. Each message is one line that says why.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    #[error("cannot open {TUN_PATH}: {0} (is the tun kernel module loaded? try `modprobe tun`)")]
    NoTunDevice(io::Error),
    #[error("cannot open {TUN_PATH}: {0}")]
    OpenTun(io::Error),
    #[error("cannot open {0}: needs CAP_NET_ADMIN (run as root)")]
    PermissionDenied(String),
    #[error("tap {0} is in use (another process or VM has it open)")]
    Busy(String),
    #[error("invalid tap name {name:?}: {why}")]
    InvalidName { name: String, why: &'static str },
    #[error("cannot open tap {0}: an interface of that name exists but is not a single-queue tap device")]
    NotATap(String),
    #[error("cannot open tap {0} with queues>1: an interface of that name exists but is not a multiqueue tap (create it with `ip tuntap add ... multi_queue`)")]
    NotAMultiqueueTap(String),
    #[error("cannot open {0}: the kernel's tun driver lacks virtio-net header support (IFF_VNET_HDR)")]
    NoVnetHeader(String),
    #[error("fd {fd} is not an open tap (TUNGETIFF fails on it)")]
    NotATapFd { fd: RawFd },
    #[error("fd {fd} is a tun/tap without IFF_TAP, IFF_NO_PI and IFF_VNET_HDR; open the tap with all three")]
    TapFdFlags { fd: RawFd },
    #[error("cannot open {what}: {op} failed: {source}")]
    Ioctl { what: String, op: &'static str, source: io::Error },
}

/// A multiqueue device's tap queue that could not be detached at set-up.
#[derive(Debug, thiserror::Error)]
#[error("cannot detach queue {queue} of tap {tap} until the guest enables it: {source}")]
pub struct DetachError {
    pub tap: String,
    pub queue: usize,
    #[source]
    pub source: io::Error,
}

/// Detaches every queue of a multiqueue tap but the first: a multiqueue device's pairs
/// start disabled, and the kernel must not steer frames to queues nobody reads.
pub fn detach_after_first<'a>(queues: impl Iterator<Item = &'a Tap>) -> Result<(), DetachError> {
    for (queue, tap) in queues.enumerate().skip(1) {
        tap.set_queue_attached(false).map_err(|source| DetachError { tap: tap.name.clone(), queue, source })?;
    }
    Ok(())
}

/// An open tap, non-blocking, close-on-exec, with 12-byte virtio-net headers.
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
    /// The tap takes UFO (TUN_F_UFO) offload settings.
    ufo: bool,
    /// False for the test stand-in (a socket), which has no tap ioctls.
    is_tap: bool,
}

impl Tap {
    /// Attaches to the tap `ifname` (an existing persistent tap, or a new
    /// one of that name if we may create it), or creates a new tap whose
    /// name the kernel picks from "tap%d". The interface is left as it is
    /// (down, no address, unless a persistent tap was configured).
    pub fn open(ifname: Option<&str>) -> Result<Tap, TapError> {
        Tap::open_queue(ifname, false)
    }

    /// `queues` queues of one multiqueue tap (IFF_MULTI_QUEUE, QEMU's `-netdev
    /// tap,queues=N`): the first is opened as [`Tap::open`] does, the others attach to
    /// the interface it named. One queue opens a single-queue tap, as QEMU does, so a
    /// persistent tap made without `multi_queue` still works.
    pub fn open_queues(ifname: Option<&str>, queues: u16) -> Result<Vec<Tap>, TapError> {
        if queues <= 1 {
            return Ok(vec![Tap::open(ifname)?]);
        }
        let first = Tap::open_queue(ifname, true)?;
        let name = first.name.clone();
        let mut taps = vec![first];
        for _ in 1..queues {
            taps.push(Tap::open_queue(Some(&name), true)?);
        }
        Ok(taps)
    }

    fn open_queue(ifname: Option<&str>, multi_queue: bool) -> Result<Tap, TapError> {
        if let Some(name) = ifname {
            validate_name(name)?;
        }
        let what = match ifname {
            Some(name) => format!("tap {name}"),
            None => "a new tap".to_string(),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(TUN_PATH)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) => TapError::NoTunDevice(e),
                Some(libc::EACCES | libc::EPERM) => TapError::PermissionDenied(TUN_PATH.to_string()),
                _ => TapError::OpenTun(e),
            })?;

        let mut features: libc::c_uint = 0;
        // SAFETY: TUNGETFEATURES writes one unsigned int through the pointer.
        let ret = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNGETFEATURES, &mut features as *mut libc::c_uint) };
        if ret < 0 {
            return Err(TapError::Ioctl { what, op: "TUNGETFEATURES", source: io::Error::last_os_error() });
        }
        if features & libc::IFF_VNET_HDR as libc::c_uint == 0 {
            return Err(TapError::NoVnetHeader(what));
        }

        let requested = ifname.unwrap_or(DEFAULT_NAME);
        let mut ifr = ifreq_with_name(requested);
        let multi = if multi_queue { libc::IFF_MULTI_QUEUE } else { 0 };
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR | multi) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes back one struct ifreq, which we own.
        let ret = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut ifr as *mut libc::ifreq) };
        if ret < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => TapError::PermissionDenied(what),
                Some(libc::EBUSY) => TapError::Busy(requested.to_string()),
                Some(libc::EINVAL) if interface_exists(requested) && multi_queue => {
                    TapError::NotAMultiqueueTap(requested.to_string())
                }
                Some(libc::EINVAL) if interface_exists(requested) => TapError::NotATap(requested.to_string()),
                Some(libc::EINVAL | libc::ENFILE) if requested.contains('%') => TapError::InvalidName {
                    name: requested.to_string(),
                    why: "the kernel cannot make a name from this pattern",
                },
                Some(libc::EINVAL) => {
                    TapError::InvalidName { name: requested.to_string(), why: "the kernel refused it" }
                }
                _ => TapError::Ioctl { what, op: "TUNSETIFF", source: e },
            });
        }
        let name = name_from_ifreq(&ifr);
        Tap::configure(file, name)
    }

    /// Attaches this queue of a multiqueue tap to its interface (`on`), or detaches it
    /// (TUNSETQUEUE): the kernel steers the host's frames only to attached queues, so a
    /// queue pair the guest has not enabled must not be attached, or the frames of
    /// the flows steered to it would wait unread (QEMU detaches them too). A detached
    /// queue drops what it held.
    pub fn set_queue_attached(&self, on: bool) -> io::Result<()> {
        if !self.is_tap {
            return Ok(());
        }
        let mut ifr = ifreq_with_name("");
        let flag = if on { libc::IFF_ATTACH_QUEUE } else { libc::IFF_DETACH_QUEUE };
        ifr.ifr_ifru.ifru_flags = flag as libc::c_short;
        // SAFETY: TUNSETQUEUE reads one struct ifreq, which we own.
        let ret = unsafe { libc::ioctl(self.file.as_raw_fd(), libc::TUNSETQUEUE, &mut ifr as *mut libc::ifreq) };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Takes over an open tap the process inherited as `fd` (`-netdev
    /// tap,fd=N`, as libvirt and Kata pass one): it must be a tap opened
    /// with IFF_VNET_HDR and IFF_NO_PI, as QEMU requires of such fds.
    pub fn from_fd(fd: RawFd) -> Result<Tap, TapError> {
        let what = format!("tap fd {fd}");
        // SAFETY: F_GETFD only checks that the descriptor is open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(TapError::Ioctl { what, op: "F_GETFD", source: io::Error::last_os_error() });
        }
        // SAFETY: the fd is open and was handed to this process for the tap;
        // nothing else in the process uses it, so the File owns it from here.
        let file = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let mut ifr = ifreq_with_name("");
        // SAFETY: TUNGETIFF writes one struct ifreq, which we own.
        if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNGETIFF, &mut ifr as *mut libc::ifreq) } < 0 {
            return Err(TapError::NotATapFd { fd });
        }
        // SAFETY: TUNGETIFF filled in the flags member of the union.
        let flags = i32::from(unsafe { ifr.ifr_ifru.ifru_flags });
        if flags & libc::IFF_TAP == 0 || flags & libc::IFF_NO_PI == 0 || flags & libc::IFF_VNET_HDR == 0 {
            return Err(TapError::TapFdFlags { fd });
        }
        // SAFETY: F_SETFD/F_GETFL/F_SETFL on a descriptor we own, with flags only.
        let ok = unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) >= 0
                && libc::fcntl(fd, libc::F_SETFL, libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK) >= 0
        };
        if !ok {
            return Err(TapError::Ioctl { what, op: "fcntl", source: io::Error::last_os_error() });
        }
        Tap::configure(file, name_from_ifreq(&ifr))
    }

    /// The set-up every tap gets once attached: header size, byte order, offloads.
    fn configure(file: File, name: String) -> Result<Tap, TapError> {
        let what = format!("tap {name}");
        let hdr_len = VNET_HDR_LEN as libc::c_int;
        // SAFETY: TUNSETVNETHDRSZ reads one int through the pointer.
        let ret = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETVNETHDRSZ, &hdr_len as *const libc::c_int) };
        if ret < 0 {
            return Err(TapError::Ioctl { what, op: "TUNSETVNETHDRSZ", source: io::Error::last_os_error() });
        }
        // virtio 1.x headers are little-endian; the tap's default is the host's order.
        #[cfg(target_endian = "big")]
        {
            let le: libc::c_int = 1;
            // SAFETY: TUNSETVNETLE reads one int through the pointer.
            let ret = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETVNETLE, &le as *const libc::c_int) };
            if ret < 0 {
                return Err(TapError::Ioctl { what, op: "TUNSETVNETLE", source: io::Error::last_os_error() });
            }
        }

        let mut tap = Tap { file, name, ufo: false, is_tap: true };
        // QEMU's probe: UFO is offered to the guest only if the tap takes it.
        tap.ufo = tap.set_offload(libc::TUN_F_CSUM | libc::TUN_F_UFO).is_ok();
        // Nothing is offloaded to the guest until it acks features.
        tap.set_offload(0).map_err(|source| TapError::Ioctl { what, op: "TUNSETOFFLOAD", source })?;
        Ok(tap)
    }

    /// The tap's file, for the kernel's vhost-net to read and write.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The interface name (the one the kernel picked, if none was given).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the tap accepts UFO settings (TUN_F_UFO).
    pub fn supports_ufo(&self) -> bool {
        self.ufo
    }

    /// Tells the tap which offloads the reader (the guest) can take:
    /// TUN_F_* flags. Without TUN_F_CSUM the kernel sends complete packets.
    pub fn set_offload(&self, flags: libc::c_uint) -> io::Result<()> {
        if !self.is_tap {
            return Ok(());
        }
        // SAFETY: TUNSETOFFLOAD takes its argument by value.
        let ret = unsafe { libc::ioctl(self.file.as_raw_fd(), libc::TUNSETOFFLOAD, libc::c_ulong::from(flags)) };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads one frame (header included). `WouldBlock` when there is none.
    /// The result can exceed `buf.len()` if the frame was truncated.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    /// Writes one frame (header included).
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        (&self.file).write(buf)
    }

    /// A stand-in for tests: one end of a non-blocking seqpacket socket pair,
    /// which keeps frame boundaries like a tap. Returns the other end.
    #[cfg(any(test, feature = "test-util"))]
    pub fn socketpair_for_tests(ufo: bool) -> (Tap, std::os::fd::OwnedFd) {
        use std::os::fd::FromRawFd;
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: socketpair writes two fds into the array.
        let ret = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(ret, 0, "socketpair: {}", io::Error::last_os_error());
        // SAFETY: both fds are fresh and owned by nobody else.
        let (ours, theirs) = unsafe { (File::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1])) };
        (Tap { file: ours, name: "testtap".to_string(), ufo, is_tap: false }, theirs)
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// The kernel's rules for interface names (dev_valid_name), checked here so
/// the error can say what is wrong.
fn validate_name(name: &str) -> Result<(), TapError> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.len() >= libc::IFNAMSIZ {
        Some("longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("not a valid interface name")
    } else if name.bytes().any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace()) {
        Some("interface names cannot contain '/', ':', NUL or whitespace")
    } else {
        None
    };
    match why {
        Some(why) => Err(TapError::InvalidName { name: name.to_string(), why }),
        None => Ok(()),
    }
}

fn ifreq_with_name(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain data (arrays, integers, a union of them); all zeros is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    // validate_name keeps it below IFNAMSIZ; the last byte stays NUL regardless.
    for (dst, &src) in ifr.ifr_name.iter_mut().zip(name.as_bytes().iter().take(libc::IFNAMSIZ - 1)) {
        *dst = src as libc::c_char;
    }
    ifr
}

fn name_from_ifreq(ifr: &libc::ifreq) -> String {
    let bytes: Vec<u8> = ifr.ifr_name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn interface_exists(name: &str) -> bool {
    let Ok(cname) = std::ffi::CString::new(name) else { return false };
    // SAFETY: if_nametoindex reads a NUL-terminated string.
    unsafe { libc::if_nametoindex(cname.as_ptr()) != 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_kernel_would_refuse_are_refused_with_a_reason() {
        for (name, why) in [
            ("", "empty"),
            ("a-name-that-is-too-long", "15 bytes"),
            ("..", "not a valid"),
            ("a/b", "cannot contain"),
            ("a b", "cannot contain"),
            ("a:1", "cannot contain"),
        ] {
            let e = Tap::open(Some(name)).unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, TapError::InvalidName { .. }), "{name:?}: {msg}");
            assert!(msg.contains(why), "{name:?}: {msg}");
            assert!(!msg.contains('\n'));
        }
        assert!(validate_name("tap0").is_ok());
        assert!(validate_name("123456789012345").is_ok());
        assert!(validate_name("tap%d").is_ok());
    }

    #[test]
    fn error_messages_are_one_line_and_say_why() {
        let e = TapError::PermissionDenied("tap tap0".into());
        assert_eq!(e.to_string(), "cannot open tap tap0: needs CAP_NET_ADMIN (run as root)");
        let e = TapError::Busy("tap0".into());
        assert!(e.to_string().contains("tap0 is in use"));
        let e = TapError::NoTunDevice(io::Error::from_raw_os_error(libc::ENOENT));
        assert!(e.to_string().contains("tun kernel module"));
    }

    #[test]
    fn ifreq_name_round_trips() {
        let ifr = ifreq_with_name("tap%d");
        assert_eq!(name_from_ifreq(&ifr), "tap%d");
        let ifr = ifreq_with_name("123456789012345");
        assert_eq!(name_from_ifreq(&ifr), "123456789012345");
    }
}
