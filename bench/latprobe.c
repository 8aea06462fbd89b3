// latprobe: a second, minimal latency loader for the fan-out row, to tell the
// server's share of the latency from `bavard bench`'s own.
//
//   gcc -O2 -o /tmp/latprobe bench/latprobe.c
//   /tmp/latprobe [PORT [CLIENTS [SENDERS [RATE [SECONDS]]]]]   (6672 100 10 2000 5)
//
// One thread, one epoll set, one timerfd: CLIENTS IRC clients on 127.0.0.1:PORT
// (source addresses spread over 127.0.0.0/8) join #lat, SENDERS of them send
// RATE messages/s in all for SECONDS after a 1 s warm-up, each payload
// carrying its send time; then waits up to 5 s for every delivery of the
// measured messages (a missing one fails the run). Prints the mean latency of every tenth client (the
// order in which the server reached them) and percentiles over all
// deliveries. Loopback only; every wait is bounded.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 2000
#define BUF 65536
#define TIMER_ID (1u << 30)

enum { WAIT_WELCOME, WAIT_JOIN, READY };

static int fds[MAX_CLIENTS];
static char *bufs[MAX_CLIENTS];
static int used[MAX_CLIENTS];
static int state[MAX_CLIENTS];
static uint64_t sum_by[MAX_CLIENTS], count_by[MAX_CLIENTS];
static uint64_t *lats;
static size_t nlat, caplat;
// Messages sent in [warm, end) are measured; their deliveries are awaited.
static uint64_t warm, end;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

// Writes all of s, waiting (at most 5 s per wait) while the socket is full.
static void send_all(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (poll(&p, 1, 5000) != 1) {
                fprintf(stderr, "latprobe: the server stopped reading\n");
                exit(1);
            }
            continue;
        }
        if (w < 0) die("write");
        s += w;
        n -= (size_t)w;
    }
}

static void record(int i, uint64_t d) {
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 1 << 20;
        lats = realloc(lats, caplat * sizeof *lats);
        if (!lats) die("realloc");
    }
    lats[nlat++] = d;
    sum_by[i] += d;
    count_by[i]++;
}

static void handle_line(int i, char *l) {
    if (!strncmp(l, "PING", 4)) {
        char out[600];
        int n = snprintf(out, sizeof out, "PONG%s\r\n", l + 4);
        send_all(fds[i], out, (size_t)n);
    } else if (state[i] == WAIT_WELCOME && strstr(l, " 001 ")) {
        state[i] = WAIT_JOIN;
        send_all(fds[i], "JOIN #lat\r\n", 11);
    } else if (state[i] == WAIT_JOIN && strstr(l, " 366 ")) {
        state[i] = READY;
    } else {
        char *p = strstr(l, "PRIVMSG #lat :");
        if (!p) return;
        uint64_t sent_at = strtoull(p + 14, NULL, 10);
        if (sent_at >= warm && sent_at < end) record(i, now_ns() - sent_at);
    }
}

static void on_readable(int i) {
    for (;;) {
        ssize_t r = read(fds[i], bufs[i] + used[i], (size_t)(BUF - used[i]));
        if (r < 0 && errno == EAGAIN) return;
        if (r < 0) die("read");
        if (r == 0) {
            fprintf(stderr, "latprobe: the server closed client %d\n", i);
            exit(1);
        }
        used[i] += (int)r;
        int start = 0;
        for (int k = 0; k < used[i]; k++) {
            if (bufs[i][k] != '\n') continue;
            bufs[i][k] = 0;
            if (k > start && bufs[i][k - 1] == '\r') bufs[i][k - 1] = 0;
            handle_line(i, bufs[i] + start);
            start = k + 1;
        }
        if (start == 0 && used[i] == BUF) used[i] = 0; // a line longer than the buffer
        memmove(bufs[i], bufs[i] + start, (size_t)(used[i] - start));
        used[i] -= start;
        if (r < BUF) return;
    }
}

static int by_value(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 6672;
    int clients = argc > 2 ? atoi(argv[2]) : 100;
    int senders = argc > 3 ? atoi(argv[3]) : 10;
    double rate = argc > 4 ? atof(argv[4]) : 2000;
    double seconds = argc > 5 ? atof(argv[5]) : 5;
    if (port <= 0 || clients < 2 || clients > MAX_CLIENTS || senders < 1 || senders > clients ||
        rate <= 0 || seconds <= 0 || seconds > 600) {
        fprintf(stderr, "usage: latprobe [PORT [CLIENTS<=%d [SENDERS [RATE [SECONDS<=600]]]]]\n",
                MAX_CLIENTS);
        return 2;
    }
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    for (int i = 0; i < clients; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) die("socket");
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)(2 + i % 250));
        if (bind(fd, (struct sockaddr *)&src, sizeof src)) die("bind");
        struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&dst, sizeof dst)) die("connect");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, O_NONBLOCK);
        fds[i] = fd;
        if (!(bufs[i] = malloc(BUF))) die("malloc");
        char hello[128];
        int n = snprintf(hello, sizeof hello, "NICK lp%d\r\nUSER lp%d 0 * :latprobe\r\n", i, i);
        send_all(fd, hello, (size_t)n);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) die("epoll_ctl");
    }
    struct epoll_event evs[256];
    for (int ready = 0; ready < clients;) {
        int k = epoll_wait(ep, evs, 256, 5000);
        if (k == 0) {
            fprintf(stderr, "latprobe: %d of %d clients joined within 5 s\n", ready, clients);
            return 1;
        }
        for (int j = 0; j < k; j++) on_readable((int)evs[j].data.u32);
        ready = 0;
        for (int i = 0; i < clients; i++) ready += state[i] == READY;
    }

    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (tfd < 0) die("timerfd_create");
    struct epoll_event tev = {.events = EPOLLIN, .data.u32 = TIMER_ID};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev)) die("epoll_ctl");
    uint64_t period = (uint64_t)(1e9 / rate);
    uint64_t t0 = now_ns(), next = t0 + period;
    warm = t0 + 1000000000ull;
    end = warm + (uint64_t)(seconds * 1e9);
    uint64_t stop = end + 5000000000ull;
    uint64_t seq = 0, sent = 0;
    char pad[80];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = 0;
    for (;;) {
        uint64_t t = now_ns();
        while (next <= t && next < end) {
            char msg[200];
            uint64_t sent_at = now_ns();
            int n = snprintf(msg, sizeof msg, "PRIVMSG #lat :%llu %llu %s\r\n",
                             (unsigned long long)sent_at, (unsigned long long)seq, pad);
            send_all(fds[seq % (uint64_t)senders], msg, (size_t)n);
            sent += sent_at >= warm && sent_at < end;
            seq++;
            next += period;
        }
        uint64_t expected = sent * (uint64_t)(clients - 1);
        if (t >= stop || (t >= end && nlat >= expected)) break;
        uint64_t wake = next < end ? next : stop;
        struct itimerspec its = {.it_value = {.tv_sec = (time_t)(wake / 1000000000ull),
                                              .tv_nsec = (long)(wake % 1000000000ull)}};
        timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        int k = epoll_wait(ep, evs, 256, 1000);
        for (int j = 0; j < k; j++) {
            if (evs[j].data.u32 == TIMER_ID) {
                uint64_t expirations;
                if (read(tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
                    die("read timerfd");
            } else {
                on_readable((int)evs[j].data.u32);
            }
        }
    }
    uint64_t expected = sent * (uint64_t)(clients - 1);
    if (!nlat || nlat != expected) {
        fprintf(stderr, "latprobe: %zu of %llu deliveries arrived within 5 s\n", nlat,
                (unsigned long long)expected);
        return 1;
    }
    for (int i = 0; i < clients; i += 10)
        printf("client %d mean %.0f us\n", i, count_by[i] ? sum_by[i] / 1e3 / count_by[i] : 0.0);
    qsort(lats, nlat, sizeof *lats, by_value);
    printf("sent %llu messages, %zu deliveries p50 %.0f us p90 %.0f us "
           "p99 %.0f us p99.9 %.0f us max %.0f us\n",
           (unsigned long long)sent, nlat,
           lats[nlat / 2] / 1e3, lats[nlat * 9 / 10] / 1e3, lats[nlat * 99 / 100] / 1e3,
           lats[nlat * 999 / 1000] / 1e3, lats[nlat - 1] / 1e3);
    return 0;
}
