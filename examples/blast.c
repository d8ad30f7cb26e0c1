/*
 * blast: replay the UDP payloads of a pcap capture to HOST:PORT at a fixed rate with
 * sendmmsg(2), for load tests of flow collectors (examples/loadtest-listeners.sh,
 * examples/bench-peers.sh). Loopback only. Also a receive-only loop (`blast --sink PORT`)
 * that counts what arrives, the kernel's floor for the same traffic.
 *
 *   cc -O2 -o blast examples/blast.c
 *   blast send FILE.pcap HOST PORT RATE SECONDS [SOURCE_PORTS]
 *   blast sink HOST PORT SECONDS [RCVBUF]
 *
 * send: the capture's datagrams are sent in capture order, looping, RATE datagrams per second
 * in 1 ms slices (each slice one or more sendmmsg calls), from SOURCE_PORTS sockets in turn
 * (default 1). Prints "sent N datagrams in S s". Reads classic pcap (either byte order,
 * microsecond or nanosecond), link types Ethernet (1, with 802.1Q tags), Linux cooked (113),
 * raw IP (101) and BSD loopback (0); IPv4 and IPv6 UDP, unfragmented.
 * sink: binds HOST:PORT (RCVBUF bytes of receive buffer requested, default 16 MiB), counts
 * datagrams and bytes with recvmmsg until SECONDS pass with nothing received, prints
 * "received N datagrams B bytes".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_DGRAMS 200000
#define BATCH 64

struct dgram { unsigned char *data; size_t len; };

static uint16_t be16(const unsigned char *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint32_t rd32(const unsigned char *p, int swap) {
    uint32_t v; memcpy(&v, p, 4);
    return swap ? __builtin_bswap32(v) : v;
}

/* The UDP payload of one captured frame, or NULL. */
static const unsigned char *udp_payload(const unsigned char *f, size_t n, uint32_t link, size_t *len) {
    size_t off; uint16_t et;
    if (link == 1) {
        if (n < 14) return NULL;
        et = be16(f + 12); off = 14;
        while ((et == 0x8100 || et == 0x88a8) && n >= off + 4) { et = be16(f + off + 2); off += 4; }
    } else if (link == 113) {
        if (n < 16) return NULL;
        et = be16(f + 14); off = 16;
    } else if (link == 101 || link == 0) {
        off = link == 0 ? 4 : 0;
        if (n <= off) return NULL;
        et = (f[off] >> 4) == 6 ? 0x86dd : 0x0800;
    } else {
        return NULL;
    }
    const unsigned char *ip = f + off; size_t left = n - off, l4;
    if (et == 0x0800) {
        if (left < 20 || ip[9] != 17) return NULL;
        if ((be16(ip + 6) & 0x3fff) != 0) return NULL; /* fragment */
        l4 = (size_t)(ip[0] & 0x0f) * 4;
    } else if (et == 0x86dd) {
        if (left < 40 || ip[6] != 17) return NULL;
        l4 = 40;
    } else {
        return NULL;
    }
    if (left < l4 + 8) return NULL;
    size_t ulen = be16(ip + l4 + 4);
    if (ulen < 8 || l4 + ulen > left) return NULL;
    *len = ulen - 8;
    return ip + l4 + 8;
}

static size_t load(const char *path, struct dgram *out) {
    FILE *fp = fopen(path, "rb");
    if (!fp) { perror(path); exit(1); }
    unsigned char gh[24];
    if (fread(gh, 1, 24, fp) != 24) { fprintf(stderr, "%s: not a pcap file\n", path); exit(1); }
    uint32_t magic; memcpy(&magic, gh, 4);
    int swap;
    if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) swap = 0;
    else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) swap = 1;
    else { fprintf(stderr, "%s: not a classic pcap file (pcapng: convert with editcap -F pcap)\n", path); exit(1); }
    uint32_t link = rd32(gh + 20, swap);
    size_t count = 0;
    unsigned char rh[16];
    static unsigned char frame[262144];
    while (count < MAX_DGRAMS && fread(rh, 1, 16, fp) == 16) {
        uint32_t incl = rd32(rh + 8, swap);
        if (incl > sizeof frame || fread(frame, 1, incl, fp) != incl) break;
        size_t len;
        const unsigned char *p = udp_payload(frame, incl, link, &len);
        if (!p) continue;
        out[count].data = malloc(len ? len : 1);
        memcpy(out[count].data, p, len);
        out[count].len = len;
        count++;
    }
    fclose(fp);
    return count;
}

static double now(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int resolve(const char *host, const char *port, struct sockaddr_storage *ss, socklen_t *sl) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET; v4->sin_port = htons((uint16_t)atoi(port)); *sl = sizeof *v4;
        return AF_INET;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6; v6->sin6_port = htons((uint16_t)atoi(port)); *sl = sizeof *v6;
        return AF_INET6;
    }
    fprintf(stderr, "%s: not an IP address\n", host); exit(1);
}

static int send_main(int argc, char **argv) {
    if (argc < 7) { fprintf(stderr, "usage: blast send FILE.pcap HOST PORT RATE SECONDS [SOURCE_PORTS]\n"); return 2; }
    static struct dgram d[MAX_DGRAMS];
    size_t n = load(argv[2], d);
    if (n == 0) { fprintf(stderr, "%s: no UDP datagrams\n", argv[2]); return 1; }
    struct sockaddr_storage dst; socklen_t dl;
    int fam = resolve(argv[3], argv[4], &dst, &dl);
    double rate = atof(argv[5]), secs = atof(argv[6]);
    int nsock = argc > 7 ? atoi(argv[7]) : 1;
    if (nsock < 1) nsock = 1;
    int *socks = calloc((size_t)nsock, sizeof *socks);
    for (int i = 0; i < nsock; i++) {
        socks[i] = socket(fam, SOCK_DGRAM, 0);
        if (socks[i] < 0) { perror("socket"); return 1; }
        int sz = 4 << 20; setsockopt(socks[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    }
    struct mmsghdr msgs[BATCH]; struct iovec iov[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        msgs[i].msg_hdr.msg_iov = &iov[i]; msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &dst; msgs[i].msg_hdr.msg_namelen = dl;
    }
    size_t next = 0; unsigned long long sent = 0; int s = 0;
    double start = now(), end = start + secs;
    for (;;) {
        double t = now();
        if (t >= end) break;
        unsigned long long due = (unsigned long long)((t - start) * rate);
        if (sent >= due) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
            continue;
        }
        unsigned long long want = due - sent;
        if (want > BATCH) want = BATCH;
        for (unsigned long long i = 0; i < want; i++) {
            iov[i].iov_base = d[next].data; iov[i].iov_len = d[next].len;
            next = (next + 1) % n;
        }
        int r = sendmmsg(socks[s], msgs, (unsigned)want, 0);
        if (r < 0) {
            if (errno == EAGAIN || errno == ENOBUFS || errno == ECONNREFUSED) continue;
            perror("sendmmsg"); return 1;
        }
        /* Datagrams not accepted are sent again from the same position. */
        next = (next + n - (want - (unsigned long long)r) % n) % n;
        sent += (unsigned long long)r;
        s = (s + 1) % nsock;
    }
    printf("sent %llu datagrams in %.2f s (%.0f/s)\n", sent, now() - start, (double)sent / (now() - start));
    return 0;
}

static int sink_main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: blast sink HOST PORT SECONDS [RCVBUF]\n"); return 2; }
    struct sockaddr_storage addr; socklen_t al;
    int fam = resolve(argv[2], argv[3], &addr, &al);
    int fd = socket(fam, SOCK_DGRAM, 0);
    int sz = argc > 5 ? atoi(argv[5]) : 16 << 20; setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    if (bind(fd, (struct sockaddr *)&addr, al) < 0) { perror("bind"); return 1; }
    struct timeval tv = { atoi(argv[4]), 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    static unsigned char bufs[BATCH][65536];
    struct mmsghdr msgs[BATCH]; struct iovec iov[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs[i]; iov[i].iov_len = sizeof bufs[i];
        msgs[i].msg_hdr.msg_iov = &iov[i]; msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long count = 0, bytes = 0;
    for (;;) {
        int r = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (r <= 0) break;
        for (int i = 0; i < r; i++) bytes += msgs[i].msg_len;
        count += (unsigned long long)r;
    }
    printf("received %llu datagrams %llu bytes\n", count, bytes);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "send") == 0) return send_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "sink") == 0) return sink_main(argc, argv);
    fprintf(stderr, "usage: blast send FILE.pcap HOST PORT RATE SECONDS [SOURCE_PORTS]\n"
                    "       blast sink HOST PORT SECONDS [RCVBUF]\n");
    return 2;
}
