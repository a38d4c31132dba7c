/* dnsone ADDR PORT NAME IPV4: a DNS server that knows one name. Answers an A query for
 * NAME with IPV4, any other query with NXDOMAIN, and prints each name asked as
 * "DNSONE-QUERY name". The rig has no DNS server (busybox-static has no dnsd); the
 * -netdev user scenario points passt's DNS forwarding at this one. Built static by
 * xtask (src/images/rootfs.rs) so it runs in L2 as is. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    struct sockaddr_in a = {.sin_family = AF_INET};
    struct in_addr answer;
    if (argc != 5 || !inet_aton(argv[1], &a.sin_addr) || !inet_aton(argv[4], &answer)) {
        fprintf(stderr, "usage: dnsone ADDR PORT NAME IPV4\n");
        return 2;
    }
    a.sin_port = htons(atoi(argv[2]));
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("dnsone: bind");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) {
        unsigned char q[512];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(s, q, sizeof q - 16, 0, (struct sockaddr *)&from, &fl);
        if (n < 12 + 5)
            continue;
        /* The question's name, dotted; it ends at its zero label. */
        char name[256] = "";
        size_t i = 12, len = 0;
        while (i < (size_t)n && q[i] != 0 && len + q[i] + 2 < sizeof name) {
            if (len)
                name[len++] = '.';
            memcpy(name + len, q + i + 1, q[i]);
            len += q[i];
            i += q[i] + 1;
        }
        name[len] = 0;
        if (i + 5 > (size_t)n)
            continue;
        unsigned qtype = q[i + 1] << 8 | q[i + 2];
        size_t end = i + 5; /* zero label, QTYPE, QCLASS */
        printf("DNSONE-QUERY %s\n", name);
        int known = strcasecmp(name, argv[3]) == 0;
        q[2] = 0x84 | (q[2] & 0x01);  /* QR, AA, RD copied */
        q[3] = known ? 0x80 : 0x83;   /* RA; NXDOMAIN for other names */
        q[4] = 0, q[5] = 1;           /* one question */
        q[6] = 0, q[7] = known && qtype == 1;
        memset(q + 8, 0, 4);
        if (known && qtype == 1) {
            unsigned char rr[16] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4};
            memcpy(rr + 12, &answer, 4);
            memcpy(q + end, rr, 16);
            end += 16;
        }
        sendto(s, q, end, 0, (struct sockaddr *)&from, fl);
    }
}
