//! Where virtio-net's frames go: a tap (`-netdev tap`), a stream socket
//! (`-netdev stream`, and `-netdev user`'s passt), or a datagram socket
//! (`-netdev dgram`). An enum, not a trait object: the tap's data path
//! stays a direct call.
//!
//! Only the tap carries the virtio-net header: the sockets carry bare
//! Ethernet frames (QEMU's format), so the device offers the guest no
//! checksum or segmentation offload on them (as QEMU, whose socket
//! netdevs have no vnet header), strips the header on transmit and puts a
//! zero one in front on receive.

use super::stream::{FrameReader, FrameWriter, StreamError};
use super::tap::{Tap, VNET_HDR_LEN};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::PathBuf;

/// A socket address as QEMU's `addr.type=unix|inet` spells it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SocketAddress {
    Unix(PathBuf),
    Inet { host: String, port: u16 },
}

impl std::fmt::Display for SocketAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            SocketAddress::Unix(path) => write!(f, "unix:{}", path.display()),
            SocketAddress::Inet { host, port } => write!(f, "inet:{host}:{port}"),
        }
    }
}

/// Why a socket backend could not be set up; one line each.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: SocketAddress, source: io::Error },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddress, source: io::Error },
    #[error("waiting for a connection on {addr}: {source}")]
    Accept { addr: SocketAddress, source: io::Error },
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddress, source: io::Error },
    #[error("dgram: local and remote must both be unix or both inet, not {local} and {remote}")]
    MixedFamilies { local: SocketAddress, remote: SocketAddress },
    #[error("cannot set up the socket of {addr}: {source}")]
    Setup { addr: SocketAddress, source: io::Error },
}

/// The device's receive buffer, what one read from any backend may fill. Tap reads: the largest GSO frame (a 64 KiB IP datagram, Ethernet and VLAN
/// headers) plus the virtio-net header, with room to spare.
pub const RX_BUFFER_LEN: usize = 17 * 4096;

/// Largest Ethernet frame a socket backend passes: what fits the device's
/// receive buffer after the header (QEMU's NET_BUFSIZE, 4 KiB + 64 KiB, too).
pub const MAX_SOCKET_FRAME: usize = RX_BUFFER_LEN - VNET_HDR_LEN;

/// A connected stream socket with QEMU's length-prefixed framing.
pub struct StreamSocket {
    file: File,
    name: String,
    reader: FrameReader,
    writer: FrameWriter,
}

impl StreamSocket {
    /// Connects to `addr` (`server=off`).
    pub fn connect(addr: &SocketAddress) -> Result<StreamSocket, SocketError> {
        let err = |source| SocketError::Connect { addr: addr.clone(), source };
        let fd: OwnedFd = match addr {
            SocketAddress::Unix(path) => UnixStream::connect(path).map_err(err)?.into(),
            SocketAddress::Inet { host, port } => TcpStream::connect((host.as_str(), *port)).map_err(err)?.into(),
        };
        StreamSocket::from_fd(fd, addr.to_string()).map_err(|source| SocketError::Setup { addr: addr.clone(), source })
    }

    /// Listens on `addr` and waits for one peer (`server=on`). QEMU accepts
    /// later, while the guest runs; microvm takes the peer before the guest
    /// starts, so its device thread needs no accept call.
    pub fn accept(addr: &SocketAddress) -> Result<StreamSocket, SocketError> {
        let listen = |source| SocketError::Listen { addr: addr.clone(), source };
        let accept = |source| SocketError::Accept { addr: addr.clone(), source };
        let fd: OwnedFd = match addr {
            SocketAddress::Unix(path) => UnixListener::bind(path).map_err(listen)?.accept().map_err(accept)?.0.into(),
            SocketAddress::Inet { host, port } => {
                TcpListener::bind((host.as_str(), *port)).map_err(listen)?.accept().map_err(accept)?.0.into()
            }
        };
        StreamSocket::from_fd(fd, addr.to_string()).map_err(|source| SocketError::Setup { addr: addr.clone(), source })
    }

    /// A connected stream socket we already hold (passt's end of a pair).
    pub fn from_fd(fd: OwnedFd, name: String) -> io::Result<StreamSocket> {
        set_nonblocking(fd.as_raw_fd())?;
        Ok(StreamSocket {
            file: File::from(fd),
            name,
            reader: FrameReader::new(MAX_SOCKET_FRAME),
            writer: FrameWriter::default(),
        })
    }
}

/// A datagram socket: one frame per datagram, to and from one peer.
pub struct DgramSocket {
    file: File,
    name: String,
}

impl DgramSocket {
    /// Binds `local` (if given) and connects to `remote`. QEMU sends to the
    /// remote address with sendto; a connected socket lets the device thread
    /// use plain read and write (no new system calls in its filter) and
    /// takes datagrams from that peer only.
    pub fn open(local: Option<&SocketAddress>, remote: &SocketAddress) -> Result<DgramSocket, SocketError> {
        let connect = |source| SocketError::Connect { addr: remote.clone(), source };
        let fd: OwnedFd = match (local, remote) {
            (None | Some(SocketAddress::Unix(_)), SocketAddress::Unix(path)) => {
                let sock = match local {
                    Some(SocketAddress::Unix(l)) => UnixDatagram::bind(l)
                        .map_err(|source| SocketError::Bind { addr: SocketAddress::Unix(l.clone()), source })?,
                    _ => UnixDatagram::unbound().map_err(connect)?,
                };
                sock.connect(path).map_err(connect)?;
                sock.into()
            }
            (None | Some(SocketAddress::Inet { .. }), SocketAddress::Inet { host, port }) => {
                let bind_to = match local {
                    Some(SocketAddress::Inet { host, port }) => (host.clone(), *port),
                    _ => (unspecified_for(host, *port), 0),
                };
                let bind_addr = SocketAddress::Inet { host: bind_to.0.clone(), port: bind_to.1 };
                let sock = UdpSocket::bind((bind_to.0.as_str(), bind_to.1))
                    .map_err(|source| SocketError::Bind { addr: bind_addr, source })?;
                sock.connect((host.as_str(), *port)).map_err(connect)?;
                sock.into()
            }
            (Some(local), remote) => {
                return Err(SocketError::MixedFamilies { local: local.clone(), remote: remote.clone() })
            }
        };
        set_nonblocking(fd.as_raw_fd()).map_err(|source| SocketError::Setup { addr: remote.clone(), source })?;
        Ok(DgramSocket { file: File::from(fd), name: remote.to_string() })
    }
}

/// The wildcard address of the family `host:port` resolves to.
fn unspecified_for(host: &str, port: u16) -> String {
    let v6 = (host, port).to_socket_addrs().ok().and_then(|mut a| a.next()).is_some_and(|a| a.is_ipv6());
    if v6 { "::" } else { "0.0.0.0" }.to_string()
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor the caller owns, with flags only.
    let ok = unsafe { libc::fcntl(fd, libc::F_SETFL, libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK) >= 0 };
    if ok {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The other end of virtio-net's frames.
pub enum Backend {
    Tap(Tap),
    Stream(StreamSocket),
    Dgram(DgramSocket),
}

impl From<Tap> for Backend {
    fn from(tap: Tap) -> Backend {
        Backend::Tap(tap)
    }
}

impl From<StreamSocket> for Backend {
    fn from(socket: StreamSocket) -> Backend {
        Backend::Stream(socket)
    }
}

impl From<DgramSocket> for Backend {
    fn from(socket: DgramSocket) -> Backend {
        Backend::Dgram(socket)
    }
}

impl Backend {
    /// The name logs and QMP use: the tap's interface, or the socket's address.
    pub fn name(&self) -> &str {
        match self {
            Backend::Tap(tap) => tap.name(),
            Backend::Stream(s) => &s.name,
            Backend::Dgram(d) => &d.name,
        }
    }

    /// What an error or hang-up on the fd most likely means, for the log.
    pub fn hang_up_reason(&self) -> &'static str {
        match self {
            Backend::Tap(_) => "the tap reports an error or hang-up (interface deleted?)",
            _ => "the socket's peer closed it or failed (its own message says why)",
        }
    }

    /// Whether frames carry the virtio-net header, so offloads can be offered.
    pub fn has_vnet_hdr(&self) -> bool {
        matches!(self, Backend::Tap(_))
    }

    pub fn supports_ufo(&self) -> bool {
        matches!(self, Backend::Tap(tap) if tap.supports_ufo())
    }

    pub fn set_offload(&self, flags: libc::c_uint) -> io::Result<()> {
        match self {
            Backend::Tap(tap) => tap.set_offload(flags),
            _ => Ok(()),
        }
    }

    /// The tap, if the backend is one.
    pub fn tap(&self) -> Option<&Tap> {
        match self {
            Backend::Tap(tap) => Some(tap),
            _ => None,
        }
    }

    /// Attaches or detaches a multiqueue tap's queue (`Tap::set_queue_attached`); a
    /// socket has one queue, always there.
    pub fn set_queue_attached(&self, on: bool) -> io::Result<()> {
        match self {
            Backend::Tap(tap) => tap.set_queue_attached(on),
            _ => Ok(()),
        }
    }

    /// Reads one frame into `buf` with a virtio-net header in front (the
    /// tap's own, or zeros), returning the length with the header.
    /// `WouldBlock` when there is none; the peer closing is `BrokenPipe`.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Backend::Tap(tap) => tap.read(buf),
            Backend::Stream(s) => {
                let n = s.reader.read_frame(&mut s.file, &mut buf[VNET_HDR_LEN..]).map_err(|e| match e {
                    StreamError::Io(e) => e,
                    StreamError::Closed => io::Error::new(io::ErrorKind::BrokenPipe, e),
                    StreamError::Oversized(..) => io::Error::new(io::ErrorKind::InvalidData, e),
                })?;
                buf[..VNET_HDR_LEN].fill(0);
                Ok(VNET_HDR_LEN + n)
            }
            Backend::Dgram(d) => {
                let n = (&d.file).read(&mut buf[VNET_HDR_LEN..])?;
                buf[..VNET_HDR_LEN].fill(0);
                Ok(VNET_HDR_LEN + n)
            }
        }
    }

    /// Sends one frame (`packet`: the guest's virtio-net header first). A
    /// stream socket may keep part of it until `flush`.
    pub fn write(&mut self, packet: &[u8]) -> io::Result<()> {
        match self {
            Backend::Tap(tap) => tap.write(packet).map(drop),
            Backend::Stream(s) => s.writer.write_frame(&mut s.file, &packet[VNET_HDR_LEN..]),
            Backend::Dgram(d) => (&d.file).write(&packet[VNET_HDR_LEN..]).map(drop),
        }
    }

    /// True when a stream socket's reader holds a whole frame already read
    /// from the socket: the fd may not be readable, so the device must not
    /// stop reading for its budget until these are taken.
    pub fn has_buffered_frame(&self) -> bool {
        matches!(self, Backend::Stream(s) if s.reader.has_frame())
    }

    /// True while a stream socket holds part of a frame: transmit waits
    /// (the guest's chains stay queued) until the socket is writable.
    pub fn tx_blocked(&self) -> bool {
        matches!(self, Backend::Stream(s) if s.writer.is_blocked())
    }

    /// Writes what a stream socket kept back.
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Backend::Stream(s) => s.writer.flush(&mut s.file),
            _ => Ok(()),
        }
    }
}

impl AsRawFd for Backend {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Backend::Tap(tap) => tap.as_raw_fd(),
            Backend::Stream(s) => s.file.as_raw_fd(),
            Backend::Dgram(d) => d.file.as_raw_fd(),
        }
    }
}
