/*
 * h_exec — a helper for the integration tests, not a test of its own: execv(argv[1], argv + 1)
 * and, when that fails, print "h_exec: PATH: strerror (errno N)" and exit 126. Unlike a shell
 * or env, it does not fall back to running the file as a script, so the caller sees the
 * kernel's own errno.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: h_exec PATH [ARG...]\n");
        return 2;
    }
    execv(argv[1], argv + 1);
    int e = errno;
    printf("h_exec: %s: %s (errno %d)\n", argv[1], strerror(e), e);
    return 126;
}
