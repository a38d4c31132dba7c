/* unixcat PATH: connects to the Unix stream socket PATH and copies stdin to it and it
 * to stdout, until the socket ends (stdin's end only half-closes it). The rig's busybox
 * nc has no Unix sockets; scenarios use this to talk to microvm's socket chardev.
 * Built static by xtask (src/images/rootfs.rs) so it runs in L2 as is. */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (argc != 2 || strlen(argv[1]) >= sizeof a.sun_path) {
        fprintf(stderr, "usage: unixcat PATH\n");
        return 2;
    }
    strcpy(a.sun_path, argv[1]);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        perror(argv[1]);
        return 1;
    }
    struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = s, .events = POLLIN}};
    char buf[4096];
    for (;;) {
        if (poll(p, 2, -1) < 0)
            return 1;
        if (p[1].revents) {
            ssize_t n = read(s, buf, sizeof buf);
            if (n <= 0 || write(1, buf, n) != n)
                return 0;
        }
        if (p[0].revents) {
            ssize_t n = read(0, buf, sizeof buf);
            if (n <= 0) {
                shutdown(s, SHUT_WR);
                p[0].fd = -1;
            } else if (write(s, buf, n) != n) {
                return 1;
            }
        }
    }
}
