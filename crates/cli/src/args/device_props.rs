//! The properties of `-drive`, `-netdev`, `-chardev` and `-object`: the one
//! place each is described (see `schema.rs`). A `-device` kind's are in its
//! descriptor (`vmm::device_kinds`).

use super::schema::Value::{Bool, OneOf, Text};
use super::schema::{ignored, prop, KindDesc, PropDesc, ID};

/// `-drive` properties.
pub(super) const DRIVE_PROPS: &[PropDesc] = &[
    PropDesc { help: "Required; -device virtio-blk-device,drive=ID refers to it.", ..ID },
    prop("file", Text("PATH"), None, "Required. The image."),
    prop(
        "format",
        OneOf(&["raw", "qcow2"]),
        Some("raw"),
        "raw or qcow2 (nothing is probed). qcow2 with its backing chain (opened read-only, relative names from \
         the image's directory, the header's backing_fmt), served with aio=threads.",
    ),
    prop("if", OneOf(&["none"]), None, "Only none: microvm has no IDE/SCSI/PCI bus."),
    PropDesc { aliases: &["read-only"], ..prop("readonly", Bool, Some("off"), "The guest cannot write.") },
    prop(
        "cache",
        OneOf(&["writeback", "writethrough", "none", "directsync", "unsafe"]),
        Some("writeback"),
        "QEMU's cache modes (none = O_DIRECT, writethrough/directsync = flush after each write, unsafe = \
         flushes ignored).",
    ),
    prop("media", OneOf(&["disk", "cdrom"]), Some("disk"), "cdrom: a read-only disk (there is no CD-ROM drive)."),
    ignored("index", Text("N"), "disks are ordered by their -device options."),
    ignored(
        "detect-zeroes",
        OneOf(&["off", "on", "unmap"]),
        "writes of zeros are written as data, so the guest reads the same zeros either way.",
    ),
    prop(
        "aio",
        OneOf(&["threads", "native", "io_uring"]),
        Some("threads"),
        "How requests reach the image. threads (microvm's default; QEMU's is a thread pool): served \
         with preadv/pwritev on the device thread, no pool, measured as fast as io_uring for one queue \
         (docs/dropin.md); io_uring: queued on an io_uring; native: io_uring too (no Linux AIO), needs \
         cache=none or directsync as in QEMU.",
    ),
    prop(
        "discard",
        OneOf(&["unmap", "ignore", "on", "off"]),
        None,
        "unmap/on: the guest's discards free space in the image (holes in a raw file, clusters in qcow2); \
         ignore/off: no discard offered. Default: unmap for raw (microvm's behaviour), ignore for qcow2 (QEMU's).",
    ),
    prop(
        "snapshot",
        Bool,
        Some("off"),
        "on: the image is opened read-only and the guest's writes go to a temporary qcow2 overlay in $TMPDIR \
         or /var/tmp, dropped when the VM ends.",
    ),
    PropDesc {
        aliases: &["bps"],
        ..prop(
            "throttling.bps-total",
            Text("N"),
            None,
            "Rate limit on all requests, in bytes per second, metered by a token bucket where QEMU has a leaky one (docs/dropin.md).",
        )
    },
    PropDesc {
        aliases: &["bps_rd"],
        ..prop("throttling.bps-read", Text("N"), None, "Rate limit on reads, in bytes per second, metered by a token bucket where QEMU has a leaky one (docs/dropin.md).")
    },
    PropDesc {
        aliases: &["bps_wr"],
        ..prop("throttling.bps-write", Text("N"), None, "Rate limit on writes, in bytes per second, metered by a token bucket where QEMU has a leaky one (docs/dropin.md).")
    },
    PropDesc {
        aliases: &["iops"],
        ..prop(
            "throttling.iops-total",
            Text("N"),
            None,
            "Rate limit on all requests, in requests per second, metered by a token bucket where QEMU has a leaky one (docs/dropin.md).",
        )
    },
    PropDesc {
        aliases: &["iops_rd"],
        ..prop("throttling.iops-read", Text("N"), None, "Rate limit on reads, in requests per second, metered by a token bucket where QEMU has a leaky one (docs/dropin.md).")
    },
    PropDesc {
        aliases: &["iops_wr"],
        ..prop(
            "throttling.iops-write",
            Text("N"),
            None,
            "Rate limit on writes, in requests per second, metered by a token bucket where QEMU has a leaky one (docs/dropin.md).",
        )
    },
    PropDesc {
        aliases: &["bps_max"],
        ..prop("throttling.bps-total-max", Text("N"), None, "Burst rate for throttling.bps-total.")
    },
    PropDesc {
        aliases: &["bps_rd_max"],
        ..prop("throttling.bps-read-max", Text("N"), None, "Burst rate for throttling.bps-read.")
    },
    PropDesc {
        aliases: &["bps_wr_max"],
        ..prop("throttling.bps-write-max", Text("N"), None, "Burst rate for throttling.bps-write.")
    },
    PropDesc {
        aliases: &["iops_max"],
        ..prop("throttling.iops-total-max", Text("N"), None, "Burst rate for throttling.iops-total.")
    },
    PropDesc {
        aliases: &["iops_rd_max"],
        ..prop("throttling.iops-read-max", Text("N"), None, "Burst rate for throttling.iops-read.")
    },
    PropDesc {
        aliases: &["iops_wr_max"],
        ..prop("throttling.iops-write-max", Text("N"), None, "Burst rate for throttling.iops-write.")
    },
    PropDesc {
        aliases: &["bps_max_length"],
        ..prop(
            "throttling.bps-total-max-length",
            Text("SECONDS"),
            Some("1"),
            "How long the burst of throttling.bps-total-max lasts.",
        )
    },
    PropDesc {
        aliases: &["bps_rd_max_length"],
        ..prop(
            "throttling.bps-read-max-length",
            Text("SECONDS"),
            Some("1"),
            "How long the burst of throttling.bps-read-max lasts.",
        )
    },
    PropDesc {
        aliases: &["bps_wr_max_length"],
        ..prop(
            "throttling.bps-write-max-length",
            Text("SECONDS"),
            Some("1"),
            "How long the burst of throttling.bps-write-max lasts.",
        )
    },
    PropDesc {
        aliases: &["iops_max_length"],
        ..prop(
            "throttling.iops-total-max-length",
            Text("SECONDS"),
            Some("1"),
            "How long the burst of throttling.iops-total-max lasts.",
        )
    },
    PropDesc {
        aliases: &["iops_rd_max_length"],
        ..prop(
            "throttling.iops-read-max-length",
            Text("SECONDS"),
            Some("1"),
            "How long the burst of throttling.iops-read-max lasts.",
        )
    },
    PropDesc {
        aliases: &["iops_wr_max_length"],
        ..prop(
            "throttling.iops-write-max-length",
            Text("SECONDS"),
            Some("1"),
            "How long the burst of throttling.iops-write-max lasts.",
        )
    },
    PropDesc {
        aliases: &["iops_size"],
        ..prop(
            "throttling.iops-size",
            Text("BYTES"),
            None,
            "A request of more bytes counts as several for the iops limits.",
        )
    },
    PropDesc {
        aliases: &["group"],
        ..prop(
            "throttling.group",
            Text("NAME"),
            None,
            "Accepted for one drive only: a group shared by several drives is refused.",
        )
    },
];

const TAP_PROPS: &[PropDesc] = &[
    PropDesc { help: "Required; -device virtio-net-device,netdev=ID refers to it.", ..ID },
    prop(
        "ifname",
        Text("NAME"),
        None,
        "An existing tap; without it (or with a %d in it) the kernel creates one named tapN.",
    ),
    prop("script", OneOf(&["no"]), None, "microvm never runs scripts: only no (or empty); set the tap up beforehand."),
    prop("downscript", OneOf(&["no"]), None, "As script."),
    prop(
        "vhost",
        Bool,
        Some("off"),
        "on: the host kernel's vhost_net (/dev/vhost-net) moves the frames between guest memory and the tap.",
    ),
    prop(
        "queues",
        Text("N"),
        Some("1"),
        "Queues of a multiqueue tap (IFF_MULTI_QUEUE), 1 to 256: -device virtio-net-device,mq=on gives the guest \
         one queue pair per queue (with vhost=on one /dev/vhost-net each).",
    ),
    prop("fds", Text("A:B"), None, "Not supported: inherited multiqueue taps; give ifname= and queues=N."),
    prop("vhostfds", Text("A:B"), None, "Not supported, as fds=."),
    prop("vnet_hdr", Bool, Some("on"), "Only on: microvm always uses the virtio-net header."),
    prop(
        "fd",
        Text("N"),
        None,
        "An open tap inherited from the caller (as libvirt and Kata pass one), opened with IFF_TAP, IFF_NO_PI \
         and IFF_VNET_HDR; instead of ifname=.",
    ),
    ignored(
        "br",
        Text("BRIDGE"),
        "QEMU uses it only with helper= (qemu-bridge-helper), which microvm never runs: attach the tap to the \
         bridge beforehand.",
    ),
];

/// `-netdev` types.
pub(super) const NETDEV_KINDS: &[KindDesc] = &[
    KindDesc {
        name: "tap",
        help: "A tap backend. Types other than these four (bridge, socket, vhost-user, ...) are errors.",
        props: TAP_PROPS,
    },
    super::netdev::USER,
    super::netdev::STREAM,
    super::netdev::DGRAM,
];

/// The `id=` of a backend that devices refer to.
const REQUIRED_ID: PropDesc = PropDesc { help: "Required; devices refer to it.", ..ID };

/// Properties every `-chardev` backend has.
const CHARDEV_MUX: PropDesc = prop(
    "mux",
    Bool,
    Some("off"),
    "on: shared by the serial port (-serial chardev:ID), virtconsoles and a human monitor (-mon chardev=ID); \
     input goes to one at a time, C-a c switches (see -echr).",
);
const CHARDEV_LOGFILE: PropDesc = prop("logfile", Text("PATH"), None, "A copy of the output goes to this file.");
const CHARDEV_LOGAPPEND: PropDesc =
    prop("logappend", Bool, Some("off"), "Append to the log file instead of truncating it first.");
const CHARDEV_SOCKET_OPTS: [PropDesc; 2] = [
    ignored("server", Bool, "QEMU ignores the socket options on other backends."),
    ignored("wait", Bool, "QEMU ignores the socket options on other backends."),
];

/// `-chardev` backends.
pub(super) const CHARDEV_KINDS: &[KindDesc] = &[
    KindDesc {
        name: "stdio",
        help: "stdin/stdout. Only one of -chardev stdio, -qmp stdio and -serial stdio may be given.",
        props: &[
            REQUIRED_ID,
            CHARDEV_MUX,
            ignored(
                "signal",
                Bool,
                "Ctrl-C always stops microvm (QEMU's default, signal=on); off does not pass it on.",
            ),
            CHARDEV_LOGFILE,
            CHARDEV_LOGAPPEND,
            CHARDEV_SOCKET_OPTS[0],
            CHARDEV_SOCKET_OPTS[1],
        ],
    },
    KindDesc {
        name: "pty",
        help: "A new pseudo-terminal; its path is printed at start-up.",
        props: &[
            REQUIRED_ID,
            CHARDEV_MUX,
            CHARDEV_LOGFILE,
            CHARDEV_LOGAPPEND,
            CHARDEV_SOCKET_OPTS[0],
            CHARDEV_SOCKET_OPTS[1],
        ],
    },
    KindDesc {
        name: "null",
        help: "Output is discarded; no input.",
        props: &[
            REQUIRED_ID,
            CHARDEV_MUX,
            CHARDEV_LOGFILE,
            CHARDEV_LOGAPPEND,
            CHARDEV_SOCKET_OPTS[0],
            CHARDEV_SOCKET_OPTS[1],
        ],
    },
    KindDesc {
        name: "file",
        help: "Output to a file; no input.",
        props: &[
            REQUIRED_ID,
            CHARDEV_MUX,
            prop("path", Text("PATH"), None, "Required."),
            prop("append", Bool, Some("off"), "Append to the file instead of truncating it first."),
            CHARDEV_LOGFILE,
            CHARDEV_LOGAPPEND,
            CHARDEV_SOCKET_OPTS[0],
            CHARDEV_SOCKET_OPTS[1],
        ],
    },
    KindDesc {
        name: "socket",
        help: "A stream socket: exactly one of path= (Unix), host= with port= (TCP) or fd= (an inherited, \
               connected socket, as QEMU's Python test harness passes). A console can use a Unix or TCP socket; \
               a -mon any of them.",
        props: &[
            REQUIRED_ID,
            CHARDEV_MUX,
            prop("path", Text("PATH"), None, "A Unix socket."),
            prop("host", Text("HOST"), None, "A TCP host (empty: every address for a server, localhost for a client)."),
            prop("port", Text("PORT"), None, "The TCP port, 1..65535."),
            prop("fd", Text("N"), None, "An inherited, connected stream socket."),
            prop("server", Bool, Some("off"), "Listen instead of connecting."),
            prop("wait", Bool, Some("on"), "A server waits for its first client before the VM starts."),
            CHARDEV_LOGFILE,
            CHARDEV_LOGAPPEND,
        ],
    },
];

/// `-object` types.
pub(super) const OBJECT_KINDS: &[KindDesc] = &[
    KindDesc {
        name: "rng-random",
        help: "An entropy backend for virtio-rng-device (which always draws from getrandom(2), the same pool).",
        props: &[
            REQUIRED_ID,
            prop("filename", OneOf(&["/dev/urandom", "/dev/random"]), Some("/dev/urandom"), "Only these."),
        ],
    },
    KindDesc { name: "rng-builtin", help: "As rng-random.", props: &[REQUIRED_ID] },
    KindDesc {
        name: "iothread",
        help: "A thread of its own for the drives that name it (virtio-blk-device,iothread=ID), instead of the \
               shared virtio thread; started only if a drive names it.",
        props: &[
            REQUIRED_ID,
            ignored("poll-max-ns", Text("NS"), "the iothread waits in epoll; it never busy-polls."),
            ignored("poll-grow", Text("N"), "the iothread never busy-polls."),
            ignored("poll-shrink", Text("N"), "the iothread never busy-polls."),
            ignored("aio-max-batch", Text("N"), "a batch is what the queues hold (at most 64 chains a turn)."),
        ],
    },
    KindDesc {
        name: "memory-backend-memfd",
        help: "Guest RAM in a memfd, which vhost-user backends (virtiofsd) can map; select it with -machine \
               memory-backend=ID or -numa node,memdev=ID.",
        props: &[
            MEMORY_ID,
            MEMORY_SIZE,
            prop("share", Bool, Some("on"), "Map it shared (needed by vhost-user devices)."),
            prop("hugetlb", Bool, Some("off"), "Use huge pages (they must be reserved on the host)."),
            prop("hugetlbsize", Text("SIZE"), None, "Huge page size (e.g. 2M, 1G); default: the host's default."),
            MEMORY_PREALLOC,
            ignored("seal", Bool, "the memfd is never passed to anything that could resize it."),
            MEMORY_MERGE,
            MEMORY_DUMP,
        ],
    },
    KindDesc {
        name: "memory-backend-file",
        help: "Guest RAM in a file; a directory (/dev/shm, a hugetlbfs mount) gets an unnamed file in it.",
        props: &[
            MEMORY_ID,
            MEMORY_SIZE,
            prop("mem-path", Text("PATH"), None, "Required: the file or directory."),
            prop("share", Bool, Some("off"), "Map it shared (needed by vhost-user devices); off: copy-on-write."),
            MEMORY_PREALLOC,
            ignored("discard-data", Bool, "the file is left as the guest wrote it."),
            MEMORY_MERGE,
            MEMORY_DUMP,
        ],
    },
    KindDesc {
        name: "memory-backend-ram",
        help: "Anonymous guest RAM (the default without a backend).",
        props: &[
            MEMORY_ID,
            MEMORY_SIZE,
            prop("share", Bool, Some("off"), "Map it shared (no other process can map it: there is no fd)."),
            MEMORY_PREALLOC,
            MEMORY_MERGE,
            MEMORY_DUMP,
        ],
    },
];

const MEMORY_ID: PropDesc =
    PropDesc { help: "Required; -machine memory-backend=ID or -numa node,memdev=ID refers to it.", ..ID };
const MEMORY_SIZE: PropDesc =
    prop("size", Text("SIZE"), None, "Required; must equal -m (which it sets when -m is not given).");
const MEMORY_PREALLOC: PropDesc =
    prop("prealloc", Bool, Some("off"), "Allocate every page before the guest runs (as -mem-prealloc).");
const MEMORY_MERGE: PropDesc = ignored("merge", Bool, "KSM merging is left to the host's defaults.");
const MEMORY_DUMP: PropDesc = ignored("dump", Bool, "microvm writes no core dumps of guest memory.");

/// `-device` drivers: each kind's descriptor (`vmm::device_kinds`).
pub(super) use vmm::device_kinds::DEVICE_KINDS;
