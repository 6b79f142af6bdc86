/*
 * t_names — file names are bytes: anything but '/' and NUL, UTF-8 or not.
 *
 * Covers, in a scratch directory under /tmp (tmpfs under vk): creating (open O_CREAT|O_EXCL,
 * mkdir, symlink, link) names that are not UTF-8 (Latin-1 bytes, 0xff, a lone continuation
 * byte, a newline, 255 bytes of 0xe9), listing them with getdents64 (exact bytes, d_type) and
 * readdir, stat/lstat/fstatat, readlink of a symbolic link whose target is not UTF-8, renameat
 * and renameat2 between such names, getcwd inside such a directory, /proc/self/fd/N naming such
 * a file, /proc/self/maps naming a mapped one (a newline shown as \012), unlink and rmdir;
 * ENAMETOOLONG past 255 bytes. Then, next to the program itself (the staged root: hostfs under
 * vk), the directory `names.d` that stage.sh fills with such names is listed and stat'ed.
 */
#include "vktest.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#endif

static char tmpdir[64];
static int tmpdir_fd = -1;

/* Non-UTF-8 names (each a C string: no NUL inside). */
static const char LATIN1[] = "caf\xe9";             /* "café" in Latin-1 */
static const char HIGH[] = "\xff\xfe\x80";          /* never valid UTF-8 */
static const char LONE[] = "x\x80y";                /* a lone continuation byte */
static const char NEWLINE[] = "new\nline\xe9";      /* a newline and a high byte */
static const char RENAMED[] = "\xc3\x28renamed\xa0"; /* an invalid two-byte sequence */

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Whether `dirfd`'s directory lists `name` (getdents64), with its d_type and d_ino. */
static int listed(int dirfd, const char *name, unsigned char *type, uint64_t *ino)
{
    char buf[4096];
    int found = 0;
    if (lseek(dirfd, 0, SEEK_SET) != 0)
        return -1;
    for (;;) {
        long n = syscall(SYS_getdents64, dirfd, buf, sizeof buf);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        for (long off = 0; off < n;) {
            struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
            if (strcmp(d->d_name, name) == 0) {
                found++;
                if (type)
                    *type = d->d_type;
                if (ino)
                    *ino = d->d_ino;
            }
            off += d->d_reclen;
        }
    }
    return found;
}

/* Entries other than . and .. in the directory `path`. */
static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void test_create_list_stat(void)
{
    int fd = openat(tmpdir_fd, LATIN1, O_CREAT | O_EXCL | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    CHECK(write(fd, "hello", 5) == 5);
    CHECK(close(fd) == 0);
    CHECK(openat(tmpdir_fd, LATIN1, O_CREAT | O_EXCL | O_WRONLY, 0644) == -1 && errno == EEXIST);
    /* "café" in UTF-8 is another name. */
    CHECK(faccessat(tmpdir_fd, "caf\xc3\xa9", F_OK, 0) == -1 && errno == ENOENT);

    struct stat st;
    CHECK(fstatat(tmpdir_fd, LATIN1, &st, 0) == 0 && S_ISREG(st.st_mode) && st.st_size == 5);
    unsigned char type = 0;
    uint64_t ino = 0;
    CHECK(listed(tmpdir_fd, LATIN1, &type, &ino) == 1);
    CHECK(type == DT_REG && ino == st.st_ino);

    CHECK(mkdirat(tmpdir_fd, HIGH, 0755) == 0);
    CHECK(mkdirat(tmpdir_fd, HIGH, 0755) == -1 && errno == EEXIST);
    CHECK(listed(tmpdir_fd, HIGH, &type, NULL) == 1 && type == DT_DIR);
    CHECK(fstatat(tmpdir_fd, HIGH, &st, 0) == 0 && S_ISDIR(st.st_mode));

    /* A file inside the non-UTF-8 directory, reached by a path through it. */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/%s", tmpdir, HIGH, LONE);
    fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
    CHECK(fd >= 0);
    CHECK(close(fd) == 0);
    CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);
    snprintf(path, sizeof path, "%s/%s", tmpdir, HIGH);
    CHECK(count_entries(path) == 1);

    /* readdir(3) sees the same bytes. */
    DIR *d = opendir(tmpdir);
    int seen = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, LATIN1) == 0 || strcmp(e->d_name, HIGH) == 0)
            seen++;
    if (d)
        closedir(d);
    CHECK(seen == 2);
}

static void test_links(void)
{
    /* A symbolic link with a non-UTF-8 name and target. */
    CHECK(symlinkat(LATIN1, tmpdir_fd, NEWLINE) == 0);
    char buf[64];
    memset(buf, 0, sizeof buf);
    CHECK(readlinkat(tmpdir_fd, NEWLINE, buf, sizeof buf) == (ssize_t)strlen(LATIN1) && strcmp(buf, LATIN1) == 0);
    struct stat st, lst;
    CHECK(fstatat(tmpdir_fd, NEWLINE, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode));
    CHECK(fstatat(tmpdir_fd, NEWLINE, &st, 0) == 0 && S_ISREG(st.st_mode) && st.st_size == 5);
    unsigned char type = 0;
    CHECK(listed(tmpdir_fd, NEWLINE, &type, NULL) == 1 && type == DT_LNK);

    /* A hard link. */
    CHECK(linkat(tmpdir_fd, LATIN1, tmpdir_fd, "\xe9\xe9", 0) == 0);
    CHECK(fstatat(tmpdir_fd, LATIN1, &st, 0) == 0 && st.st_nlink == 2);
    CHECK(unlinkat(tmpdir_fd, "\xe9\xe9", 0) == 0);
    CHECK(fstatat(tmpdir_fd, LATIN1, &st, 0) == 0 && st.st_nlink == 1);
    CHECK(unlinkat(tmpdir_fd, NEWLINE, 0) == 0);
    CHECK(listed(tmpdir_fd, NEWLINE, NULL, NULL) == 0);
}

static void test_rename(void)
{
    struct stat before, st;
    CHECK(fstatat(tmpdir_fd, LATIN1, &before, 0) == 0);
    CHECK(renameat(tmpdir_fd, LATIN1, tmpdir_fd, RENAMED) == 0);
    CHECK(fstatat(tmpdir_fd, LATIN1, &st, 0) == -1 && errno == ENOENT);
    CHECK(fstatat(tmpdir_fd, RENAMED, &st, 0) == 0 && st.st_ino == before.st_ino);
    CHECK(listed(tmpdir_fd, RENAMED, NULL, NULL) == 1 && listed(tmpdir_fd, LATIN1, NULL, NULL) == 0);

    /* Into the non-UTF-8 directory, and back with renameat2. */
    char to[PATH_MAX];
    snprintf(to, sizeof to, "%s/%s", HIGH, LATIN1);
    CHECK(renameat(tmpdir_fd, RENAMED, tmpdir_fd, to) == 0);
    CHECK(fstatat(tmpdir_fd, to, &st, 0) == 0 && st.st_ino == before.st_ino);
    CHECK(syscall(SYS_renameat2, tmpdir_fd, to, tmpdir_fd, LATIN1, RENAME_NOREPLACE) == 0);

    int fd = openat(tmpdir_fd, LATIN1, O_RDONLY);
    char buf[8] = {0};
    CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0);
    if (fd >= 0)
        close(fd);
}

static void test_proc_cwd(void)
{
    /* getcwd inside a non-UTF-8 directory gives its bytes. */
    char want[PATH_MAX], cwd[PATH_MAX];
    snprintf(want, sizeof want, "%s/%s", tmpdir, HIGH);
    int here = open(".", O_RDONLY | O_DIRECTORY);
    CHECK(chdir(want) == 0);
    CHECK(getcwd(cwd, sizeof cwd) != NULL && strcmp(cwd, want) == 0);
    CHECK(here >= 0 && fchdir(here) == 0);
    if (here >= 0)
        close(here);

    /* /proc/self/fd/N names the file by its bytes. */
    snprintf(want, sizeof want, "%s/%s", tmpdir, LATIN1);
    int fd = open(want, O_RDONLY);
    CHECK(fd >= 0);
    char link[64], got[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    memset(got, 0, sizeof got);
    CHECK(readlink(link, got, sizeof got - 1) == (ssize_t)strlen(want) && strcmp(got, want) == 0);

    close(fd);

    /* /proc/self/maps too; a newline in a name shows as \012 (one line per mapping). */
    CHECK(renameat(tmpdir_fd, LATIN1, tmpdir_fd, NEWLINE) == 0);
    fd = openat(tmpdir_fd, NEWLINE, O_RDONLY);
    CHECK(fd >= 0);
    void *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(m != MAP_FAILED);
    char line_end[PATH_MAX];
    snprintf(line_end, sizeof line_end, "%s/new\\012line\xe9\n", tmpdir);
    static char maps[65536];
    int mfd = open("/proc/self/maps", O_RDONLY);
    ssize_t n = 0, r;
    while (mfd >= 0 && (r = read(mfd, maps + n, sizeof maps - 1 - (size_t)n)) > 0)
        n += r;
    maps[n > 0 ? n : 0] = 0;
    if (mfd >= 0)
        close(mfd);
    CHECKF(strstr(maps, line_end) != NULL, "maps:\n%s", maps);
    if (m != MAP_FAILED)
        munmap(m, 4096);
    CHECK(renameat(tmpdir_fd, NEWLINE, tmpdir_fd, LATIN1) == 0);
    close(fd);
}

static void test_limits_and_removal(void)
{
    char longname[300];
    memset(longname, 0xe9, sizeof longname);
    longname[255] = 0;
    int fd = openat(tmpdir_fd, longname, O_CREAT | O_EXCL | O_WRONLY, 0644);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    CHECK(listed(tmpdir_fd, longname, NULL, NULL) == 1);
    CHECK(unlinkat(tmpdir_fd, longname, 0) == 0);
    longname[255] = (char)0xe9;
    longname[256] = 0;
    CHECK(openat(tmpdir_fd, longname, O_CREAT | O_WRONLY, 0644) == -1 && errno == ENAMETOOLONG);
    CHECK(mkdirat(tmpdir_fd, longname, 0755) == -1 && errno == ENAMETOOLONG);

    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", HIGH, LONE);
    CHECK(unlinkat(tmpdir_fd, HIGH, AT_REMOVEDIR) == -1 && errno == ENOTEMPTY);
    CHECK(unlinkat(tmpdir_fd, path, 0) == 0);
    CHECK(unlinkat(tmpdir_fd, HIGH, AT_REMOVEDIR) == 0);
    CHECK(unlinkat(tmpdir_fd, LATIN1, 0) == 0);
    CHECK(listed(tmpdir_fd, HIGH, NULL, NULL) == 0 && listed(tmpdir_fd, LATIN1, NULL, NULL) == 0);
    CHECK(count_entries(tmpdir) == 0);
}

/* The names stage.sh put next to this program (hostfs under vk, a host directory natively). */
static void test_staged(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    REQUIRE(n > 0);
    if (n <= 0)
        return;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return;
    strcpy(slash + 1, "names.d");
    int dfd = open(exe, O_RDONLY | O_DIRECTORY);
    REQUIRE(dfd >= 0);
    if (dfd < 0)
        return;
    unsigned char type = 0;
    uint64_t ino = 0;
    struct stat st;
    CHECK(listed(dfd, LATIN1, &type, &ino) == 1 && type == DT_REG);
    CHECK(fstatat(dfd, LATIN1, &st, 0) == 0 && st.st_ino == ino && st.st_size == 6);
    int fd = openat(dfd, LATIN1, O_RDONLY);
    char buf[8] = {0};
    CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 6 && memcmp(buf, "staged", 6) == 0);
    if (fd >= 0)
        close(fd);
    CHECK(listed(dfd, HIGH, &type, NULL) == 1 && type == DT_DIR);
    close(dfd);
}

int main(void)
{
    vktest_reset_signals();
    umask(022);
    strcpy(tmpdir, "/tmp/vkn.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(!"mkdtemp");
        vktest_done();
    }
    tmpdir_fd = open(tmpdir, O_RDONLY | O_DIRECTORY);
    REQUIRE(tmpdir_fd >= 0);

    test_create_list_stat();
    test_links();
    test_rename();
    test_proc_cwd();
    test_limits_and_removal();
    test_staged();

    close(tmpdir_fd);
    CHECK(rmdir(tmpdir) == 0);
    vktest_done();
}
