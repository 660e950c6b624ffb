/*
 * tcp_native.c - the plain TCP stream the channel benchmark compares with:
 * two ordinary processes, the same 1 MiB writes and reads as produce.c and
 * consume.c, no agent and no sandbox. Built with the host's gcc.
 *
 *   tcp_native recv           listen on 127.0.0.1 (any port), print the port,
 *                             read one connection to end of stream, print bytes
 *   tcp_native send PORT BYTES
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char buf[1 << 20];

int main(int argc, char **argv)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int s = socket(AF_INET, SOCK_STREAM, 0);

    if (s < 0 || argc < 2)
        return 1;
    if (strcmp(argv[1], "recv") == 0) {
        long long total = 0;
        ssize_t n;
        int c;
        if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 1) || getsockname(s, (struct sockaddr *)&a, &len))
            return 1;
        printf("%d\n", ntohs(a.sin_port));
        fflush(stdout);
        if ((c = accept(s, NULL, NULL)) < 0)
            return 1;
        while ((n = read(c, buf, sizeof buf)) > 0)
            total += n;
        printf("bytes=%lld\n", total);
        return n < 0;
    }
    if (strcmp(argv[1], "send") == 0 && argc == 4) {
        long long total = atoll(argv[3]);
        a.sin_port = htons((unsigned short)atoi(argv[2]));
        memset(buf, 'x', sizeof buf);
        if (connect(s, (struct sockaddr *)&a, sizeof a))
            return 1;
        while (total > 0) {
            ssize_t n = write(s, buf, total < (long long)sizeof buf ? (size_t)total : sizeof buf);
            if (n <= 0)
                return 1;
            total -= n;
        }
        return close(s) != 0;
    }
    return 1;
}
