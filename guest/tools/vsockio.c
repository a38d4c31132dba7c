/* vsockio: both ends of the vsock acceptance tests (issue 11's vhost-vsock, issue 17's
 * hybrid vsock), one static program built by xtask (src/images/rootfs.rs), in the guest's
 * rootfs as /bin/vsockio and in the rig as $VSOCKIO.
 *
 *   vsockio serve PORT BYTES CYCLES          (rig, AF_VSOCK: listens on any CID)
 *   vsockio connect CID PORT BYTES CYCLES    (guest, AF_VSOCK: CID 2 is the host)
 *   vsockio listen PORT BYTES CYCLES         (guest, AF_VSOCK: the host connects)
 *   vsockio serve-unix PATH BYTES CYCLES     (rig, hybrid vsock: listens on the Unix
 *                                             socket PATH = <uds_path>_<port>)
 *   vsockio connect-unix PATH PORT BYTES CYCLES  (rig, hybrid vsock: connects to PATH =
 *                                             uds_path, writes CONNECT PORT, reads OK)
 *
 * First connection: both ends send BYTES of their own pseudo-random stream while
 * receiving the other's, full duplex, and print the byte counts and FNV-1a sums of what
 * they sent and received (PREFIX-TX/RX bytes=N sum=X). Then CYCLES connections that the
 * client opens and closes at once; each end prints its open descriptor count before and
 * after them (PREFIX-FDS before=N after=M), so a leak shows as a difference. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static const char *prefix;

static int fd_count(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", "..", and the directory's own descriptor */
}

static void die(const char *what) {
    printf("%s-ERROR %s: %s\n", prefix, what, strerror(errno));
    fflush(stdout);
    exit(1);
}

/* xorshift64 stream: deterministic, different per seed, cheap. */
static void fill(uint64_t *state, unsigned char *buf, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0) {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
        }
        buf[i] = (unsigned char)(*state >> (8 * (i % 8)));
    }
}

static void fnv(uint64_t *sum, const unsigned char *buf, size_t n) {
    for (size_t i = 0; i < n; i++)
        *sum = (*sum ^ buf[i]) * 0x100000001b3ULL;
}

/* Sends `total` bytes seeded by `seed` while receiving until the peer's end. */
static void exchange(int s, uint64_t total, uint64_t seed) {
    static unsigned char out[65536], in[65536];
    uint64_t state = seed, sent = 0, received = 0;
    uint64_t tx_sum = 0xcbf29ce484222325ULL, rx_sum = 0xcbf29ce484222325ULL;
    size_t pending = 0, offset = 0;
    int reading = 1;
    fcntl(s, F_SETFL, O_NONBLOCK);
    if (total == 0)
        shutdown(s, SHUT_WR); /* nothing to send: the peer's read ends at once */
    while (reading || sent < total || pending) {
        struct pollfd p = {.fd = s, .events = (reading ? POLLIN : 0) | (sent < total || pending ? POLLOUT : 0)};
        if (poll(&p, 1, -1) < 0)
            die("poll");
        if (p.revents & (POLLIN | POLLHUP | POLLERR) && reading) {
            ssize_t n = read(s, in, sizeof in);
            if (n > 0) {
                fnv(&rx_sum, in, n);
                received += n;
            } else if (n == 0) {
                reading = 0;
            } else if (errno != EAGAIN) {
                die("read");
            }
        }
        if (p.revents & POLLOUT) {
            if (!pending && sent < total) {
                size_t n = total - sent < sizeof out ? total - sent : sizeof out;
                fill(&state, out, n);
                fnv(&tx_sum, out, n);
                pending = n;
                offset = 0;
            }
            ssize_t n = write(s, out + offset, pending);
            if (n > 0) {
                offset += n;
                pending -= n;
                sent += n;
                if (sent == total && !pending)
                    shutdown(s, SHUT_WR);
            } else if (n < 0 && errno != EAGAIN) {
                die("write");
            }
        }
    }
    printf("%s-TX bytes=%llu sum=%016llx\n", prefix, (unsigned long long)sent, (unsigned long long)tx_sum);
    printf("%s-RX bytes=%llu sum=%016llx\n", prefix, (unsigned long long)received, (unsigned long long)rx_sum);
    fflush(stdout);
}

/* Waits for the peer to close its end. */
static void drain(int s) {
    char c;
    while (read(s, &c, 1) > 0) {
    }
}

/* The rig's stream (serve, serve-unix, connect-unix) and the guest's (connect, listen)
 * differ, so a transfer that echoed or swapped them shows in the sums. */
static const uint64_t RIG_SEED = 0x5249475249475249ULL, GUEST_SEED = 0x4755455354475545ULL;

static int vsock_listener(unsigned port) {
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    int l = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 16) < 0)
        die("listen");
    return l;
}

static struct sockaddr_un unix_addr(const char *path) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    return a;
}

static int unix_listener(const char *path) {
    struct sockaddr_un a = unix_addr(path);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    unlink(path);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 16) < 0)
        die("listen");
    return l;
}

static int serve(int l, uint64_t bytes, int cycles, uint64_t seed) {
    printf("%s-LISTENING\n", prefix);
    fflush(stdout);
    int s = accept(l, NULL, NULL);
    if (s < 0)
        die("accept");
    printf("%s-ACCEPTED\n", prefix);
    fflush(stdout);
    exchange(s, bytes, seed);
    close(s);
    int before = fd_count();
    for (int i = 0; i < cycles; i++) {
        s = accept(l, NULL, NULL);
        if (s < 0)
            die("accept");
        drain(s);
        close(s);
    }
    printf("%s-FDS before=%d after=%d cycles=%d\n", prefix, before, fd_count(), cycles);
    return 0;
}

/* Where a client connects: an AF_VSOCK address, or the hybrid vsock's Unix socket and
 * the guest port its CONNECT line names. */
struct target {
    const char *path;
    unsigned cid, port;
};

/* Firecracker's handshake: CONNECT <port>\n, answered OK <host port>\n once the guest
 * accepted; the socket just closes if nothing listens there (yet). */
static int connect_unix(const struct target *t) {
    struct sockaddr_un a = unix_addr(t->path);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        if (s >= 0)
            close(s);
        return -1;
    }
    char line[64];
    int n = snprintf(line, sizeof line, "CONNECT %u\n", t->port);
    if (write(s, line, n) != n) {
        close(s);
        return -1;
    }
    size_t got = 0;
    while (got < sizeof line - 1 && read(s, line + got, 1) == 1 && line[got] != '\n')
        got++;
    line[got] = 0;
    if (strncmp(line, "OK ", 3) != 0) {
        close(s);
        return -1;
    }
    return s;
}

static int open_conn(const struct target *t) {
    if (t->path)
        return connect_unix(t);
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = t->cid, .svm_port = t->port};
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        close(s);
        return -1;
    }
    return s;
}

static int client(const struct target *t, uint64_t bytes, int cycles, uint64_t seed) {
    int s = open_conn(t);
    /* The first connection may come before the guest listens: try for a minute. */
    for (int i = 0; s < 0 && t->path && i < 600; i++) {
        usleep(100000);
        s = open_conn(t);
    }
    if (s < 0)
        die("connect");
    exchange(s, bytes, seed);
    close(s);
    int before = fd_count();
    for (int i = 0; i < cycles; i++) {
        s = open_conn(t);
        if (s < 0)
            die("connect (cycles)");
        close(s);
    }
    printf("%s-FDS before=%d after=%d cycles=%d\n", prefix, before, fd_count(), cycles);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "serve")) {
        prefix = "RIG-VSOCK";
        return serve(vsock_listener(atoi(argv[2])), strtoull(argv[3], NULL, 0), atoi(argv[4]), RIG_SEED);
    }
    if (argc == 5 && !strcmp(argv[1], "listen")) {
        prefix = "GUEST-VSOCK-LISTEN";
        return serve(vsock_listener(atoi(argv[2])), strtoull(argv[3], NULL, 0), atoi(argv[4]), GUEST_SEED);
    }
    if (argc == 5 && !strcmp(argv[1], "serve-unix")) {
        prefix = "RIG-HVSOCK";
        return serve(unix_listener(argv[2]), strtoull(argv[3], NULL, 0), atoi(argv[4]), RIG_SEED);
    }
    if (argc == 6 && !strcmp(argv[1], "connect")) {
        prefix = "GUEST-VSOCK";
        struct target t = {.cid = atoi(argv[2]), .port = atoi(argv[3])};
        return client(&t, strtoull(argv[4], NULL, 0), atoi(argv[5]), GUEST_SEED);
    }
    if (argc == 6 && !strcmp(argv[1], "connect-unix")) {
        prefix = "RIG-HVSOCK-CONNECT";
        struct target t = {.path = argv[2], .port = atoi(argv[3])};
        return client(&t, strtoull(argv[4], NULL, 0), atoi(argv[5]), RIG_SEED);
    }
    fprintf(stderr, "usage: vsockio serve PORT BYTES CYCLES | connect CID PORT BYTES CYCLES | listen PORT BYTES "
                    "CYCLES | serve-unix PATH BYTES CYCLES | connect-unix PATH PORT BYTES CYCLES\n");
    return 2;
}
