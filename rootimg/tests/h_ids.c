/*
 * h_ids — print the process's credentials on one line, for t_perm's exec checks:
 *
 *     uid=R,E,S gid=R,E,S secure=N eff=HEX prm=HEX
 *
 * (getresuid, getresgid, getauxval(AT_SECURE), and capget's effective and permitted sets as
 * 64-bit numbers). rootimg/stage.sh installs copies with setuid/setgid bits in /usr/tests/perm.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0)
        return 2;
    struct {
        uint32_t version;
        int pid;
    } hdr = {0x20080522, 0}; /* _LINUX_CAPABILITY_VERSION_3 */
    struct {
        uint32_t effective, permitted, inheritable;
    } data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &hdr, data) != 0)
        return 3;
    uint64_t eff = (uint64_t)data[1].effective << 32 | data[0].effective;
    uint64_t prm = (uint64_t)data[1].permitted << 32 | data[0].permitted;
    char line[160];
    int n = snprintf(line, sizeof line, "uid=%u,%u,%u gid=%u,%u,%u secure=%lu eff=%llx prm=%llx\n", ru, eu, su, rg,
                     eg, sg, getauxval(AT_SECURE), (unsigned long long)eff, (unsigned long long)prm);
    return write(1, line, (size_t)n) == n ? 0 : 4;
}
