/* The guest's side of the multiqueue scenario (busybox has no ethtool):
 *   netqueues IFACE set N   ETHTOOL_SCHANNELS combined=N (virtio_net sends the
 *                           device VQ_PAIRS_SET); prints the channel limits first
 *   netqueues IFACE stats   the driver's per-queue counters (ETHTOOL_GSTATS) of
 *                           packets and kicks, one "MQ-STAT NAME VALUE" line each
 *                           (Linux 6.12 reports per-queue packets through netlink
 *                           only; its ethtool kicks count the notifications each
 *                           queue sent the device)
 * Linux's virtio_net enables min(max pairs, online CPUs) pairs at probe: with the
 * rig's one vCPU that is one, hence the explicit set. */
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int fd;
static const char *ifname;

static int ethtool(void *data) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    ifr.ifr_data = data;
    return ioctl(fd, SIOCETHTOOL, &ifr);
}

static int set_channels(unsigned n) {
    struct ethtool_channels ch = {.cmd = ETHTOOL_GCHANNELS};
    if (ethtool(&ch) < 0) {
        perror("ETHTOOL_GCHANNELS");
        return 1;
    }
    printf("MQ-CHANNELS max_combined=%u combined=%u\n", ch.max_combined, ch.combined_count);
    ch.cmd = ETHTOOL_SCHANNELS;
    ch.combined_count = n;
    if (ethtool(&ch) < 0) {
        perror("ETHTOOL_SCHANNELS");
        return 1;
    }
    return 0;
}

static int stats(void) {
    struct {
        struct ethtool_sset_info info;
        __u32 count;
    } sset = {.info = {.cmd = ETHTOOL_GSSET_INFO, .sset_mask = 1ULL << ETH_SS_STATS}};
    if (ethtool(&sset) < 0) {
        perror("ETHTOOL_GSSET_INFO");
        return 1;
    }
    if (!sset.info.sset_mask) {
        fprintf(stderr, "%s has no statistics\n", ifname);
        return 1;
    }
    unsigned n = sset.count;
    struct ethtool_gstrings *names = calloc(1, sizeof *names + n * ETH_GSTRING_LEN);
    struct ethtool_stats *values = calloc(1, sizeof *values + n * sizeof(__u64));
    if (!names || !values)
        return 1;
    names->cmd = ETHTOOL_GSTRINGS;
    names->string_set = ETH_SS_STATS;
    names->len = n;
    values->cmd = ETHTOOL_GSTATS;
    values->n_stats = n;
    if (ethtool(names) < 0 || ethtool(values) < 0) {
        perror("ETHTOOL_GSTRINGS/GSTATS");
        return 1;
    }
    for (unsigned i = 0; i < n; i++) {
        char name[ETH_GSTRING_LEN + 1] = {0};
        memcpy(name, names->data + i * ETH_GSTRING_LEN, ETH_GSTRING_LEN);
        if (strstr(name, "packets") || strstr(name, "kicks"))
            printf("MQ-STAT %s %llu\n", name, (unsigned long long)values->data[i]);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3 || (strcmp(argv[2], "set") == 0 && argc != 4)) {
        fprintf(stderr, "usage: netqueues IFACE set N | netqueues IFACE stats\n");
        return 2;
    }
    ifname = argv[1];
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("socket");
        return 1;
    }
    if (strcmp(argv[2], "set") == 0)
        return set_channels((unsigned)atoi(argv[3]));
    return stats();
}
