/*
 * h_exec — a helper for the integration tests, not a test of its own:
 *   h_exec [-u UID] PATH [ARG...]
 * With -u, become UID (group too) first. Then execv(PATH, ARGs) and, when that fails, print
 * "h_exec: PATH: strerror (errno N)" and exit 126. Unlike a shell or env, it does not fall back
 * to running the file as a script, so the caller sees the kernel's own errno.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "-u") == 0) {
        int uid = atoi(argv[2]);
        if (setgid(uid) != 0 || setuid(uid) != 0) {
            printf("h_exec: setuid %d: %s\n", uid, strerror(errno));
            return 125;
        }
        first = 3;
    }
    if (argc <= first) {
        fprintf(stderr, "usage: h_exec [-u UID] PATH [ARG...]\n");
        return 2;
    }
    execv(argv[first], argv + first);
    int e = errno;
    printf("h_exec: %s: %s (errno %d)\n", argv[first], strerror(e), e);
    return 126;
}
