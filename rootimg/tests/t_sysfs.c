/*
 * t_sysfs — sysfs(2), the old file-system-type query, agrees with /proc/filesystems: option 3
 * counts its lines, option 2 names the type of each index, option 1 gives a name's index;
 * unknown names, indexes and options are EINVAL, bad pointers EFAULT.
 */
#include "vktest.h"

#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    FILE *f = fopen("/proc/filesystems", "r");
    REQUIRE(f != NULL);
    char line[256], names[64][64];
    int n = 0;
    while (n < 64 && fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        tab[strcspn(tab, "\n")] = '\0';
        snprintf(names[n++], sizeof names[0], "%s", tab + 1);
    }
    fclose(f);
    CHECK(n > 0);
    CHECK(syscall(SYS_sysfs, 3) == n);
    /* One check for all the types (their number differs between kernels). */
    int wrong = 0;
    for (int i = 0; i < n; i++) {
        char buf[64] = "";
        if (syscall(SYS_sysfs, 2, i, buf) != 0 || strcmp(buf, names[i]) != 0 || syscall(SYS_sysfs, 1, names[i]) != i) {
            vktest_print("type %d (%s) answered wrongly\n", i, names[i]);
            wrong++;
        }
    }
    CHECK(wrong == 0);
    char buf[64];
    errno = 0;
    CHECK(syscall(SYS_sysfs, 1, "nosuchfs") == -1 && errno == EINVAL);
    errno = 0;
    CHECK(syscall(SYS_sysfs, 2, n, buf) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(syscall(SYS_sysfs, 4) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(syscall(SYS_sysfs, 0) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(syscall(SYS_sysfs, 1, BAD_PTR(8)) == -1 && errno == EFAULT);
    errno = 0;
    CHECK(syscall(SYS_sysfs, 2, 0, BAD_PTR(8)) == -1 && errno == EFAULT);
    return vktest_done();
}
