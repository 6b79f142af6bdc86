/*
 * t_loop — loop devices (loop(4)) and the block ioctls, as losetup(8), mke2fs and
 * `mount -o loop` use them: /dev/loop-control's LOOP_CTL_GET_FREE, LOOP_CTL_ADD (EEXIST for
 * one that exists) and LOOP_CTL_REMOVE (EBUSY while bound, ENODEV for none); a /dev/loopN
 * node (a block device, major 7, size 0 in stat; it and loop-control are root's (0660 root:disk
 * under vk, as udev makes them), so another user cannot open them); LOOP_SET_FD (EBUSY when bound, EINVAL for a
 * directory, EBADF for a bad descriptor or the device itself), then BLKGETSIZE64, BLKGETSIZE, BLKSSZGET,
 * BLKPBSZGET, BLKBSZGET, BLKROGET and lseek(SEEK_END) giving the size; reads and writes
 * through the device reaching the file (fsync), ENOSPC at the end; LOOP_GET_STATUS64 (ENXIO
 * unbound) and LOOP_SET_STATUS64 (offset, size limit, name, LO_FLAGS_AUTOCLEAR; EINVAL for
 * an encryption type), and the old LOOP_GET_STATUS/LOOP_SET_STATUS; a read-only binding (BLKROGET 1, writes EPERM); LOOP_CONFIGURE (with
 * its argument checks); LOOP_SET_CAPACITY after the file grows; LOOP_CLR_FD and autoclear
 * (the device is unbound once its last user is gone — a mount counts); and an ext2 file
 * system made by mke2fs in a file, mounted from a loop device, written, fallocated (mode 0
 * may be EOPNOTSUPP, as Linux's ext2 answers; a punched hole reads zeros), unmounted and
 * mounted again read-only to read back.
 *
 * Natively it needs root and /dev/loop-control (without it, it passes nothing and says so);
 * it moves into a private mount namespace first (as t_mount) and detaches and removes every
 * loop device it used, whatever happens.
 */
#include "vktest.h"

#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

/* linux/loop.h (musl has no kernel headers). */
#define LOOP_SET_FD 0x4C00
#define LOOP_CLR_FD 0x4C01
#define LOOP_SET_STATUS 0x4C02
#define LOOP_GET_STATUS 0x4C03
#define LOOP_SET_STATUS64 0x4C04
#define LOOP_GET_STATUS64 0x4C05
#define LOOP_SET_CAPACITY 0x4C07
#define LOOP_CONFIGURE 0x4C0A
#define LOOP_CTL_ADD 0x4C80
#define LOOP_CTL_REMOVE 0x4C81
#define LOOP_CTL_GET_FREE 0x4C82
#define LO_FLAGS_READ_ONLY 1
#define LO_FLAGS_AUTOCLEAR 4
/* The BLK* requests come from <sys/mount.h>; BLKPBSZGET is not there. */
#ifndef BLKPBSZGET
#define BLKPBSZGET 0x127b
#endif

struct loop_info64 {
    uint64_t lo_device, lo_inode, lo_rdevice, lo_offset, lo_sizelimit;
    uint32_t lo_number, lo_encrypt_type, lo_encrypt_key_size, lo_flags;
    uint8_t lo_file_name[64], lo_crypt_name[64], lo_encrypt_key[32];
    uint64_t lo_init[2];
};

/* The old form LTP's device set-up uses. */
struct loop_info {
    int lo_number;
    unsigned long lo_device, lo_inode, lo_rdevice;
    int lo_offset, lo_encrypt_type, lo_encrypt_key_size, lo_flags;
    char lo_name[64];
    unsigned char lo_encrypt_key[32];
    unsigned long lo_init[2];
    char reserved[4];
};

struct loop_config {
    uint32_t fd, block_size;
    struct loop_info64 info;
    uint64_t reserved[8];
};

#define MIB (1 << 20)

static char dir[64];
static int ctl = -1;
/* Loop devices this program bound, with their file's inode (detached at the end if still
 * bound to it: another program on the host may have taken the number since), and made
 * (removed at the end). */
static struct {
    int n;
    ino_t ino;
} used[32];
static int nused;
static int made[8], nmade;

#define P(name) vktest_path(dir, name)

static void pause_ms(int ms)
{
    struct timespec ts = { 0, ms * 1000000L };
    nanosleep(&ts, NULL);
}

/* Open /dev/loopN (natively its node may appear a moment after the device). */
static int open_loop(int n, int flags)
{
    char path[32];
    snprintf(path, sizeof path, "/dev/loop%d", n);
    for (int i = 0; i < 200; i++) {
        int fd = open(path, flags | O_CLOEXEC);
        if (fd >= 0 || errno != ENOENT)
            return fd;
        pause_ms(10);
    }
    return -1;
}

static int get_free(void)
{
    return ioctl(ctl, LOOP_CTL_GET_FREE);
}

/* Bind loop device *n (open as *lfd) to file bfd with `req` (LOOP_SET_FD or LOOP_CONFIGURE,
 * argument `arg`); when another program took the number first (EBUSY), a fresh free one. */
static int bind(int *n, int *lfd, int mode, int bfd, unsigned long req, void *arg)
{
    for (int tries = 0; tries < 20; tries++) {
        int r = ioctl(*lfd, req, arg);
        if (r == 0) {
            struct stat st;
            if (nused < 32 && fstat(bfd, &st) == 0) {
                used[nused].n = *n;
                used[nused++].ino = st.st_ino;
            }
            return 0;
        }
        if (errno != EBUSY)
            return -1;
        close(*lfd);
        *n = get_free();
        *lfd = open_loop(*n, mode);
        if (*lfd < 0)
            return -1;
    }
    return -1;
}

static uint64_t size64(int fd)
{
    uint64_t s = UINT64_MAX;
    return ioctl(fd, BLKGETSIZE64, &s) == 0 ? s : UINT64_MAX;
}

/* Whether loop device n is unbound, waiting a little for a detach that runs at last close. */
static int unbound_soon(int n)
{
    for (int i = 0; i < 300; i++) {
        int fd = open_loop(n, O_RDONLY);
        if (fd < 0)
            return 0;
        struct loop_info64 li;
        int r = ioctl(fd, LOOP_GET_STATUS64, &li);
        int e = errno;
        close(fd);
        if (r == -1 && e == ENXIO)
            return 1;
        pause_ms(10);
    }
    return 0;
}

/* Byte i of the backing file. */
static char pattern(long i)
{
    return (char)('A' + (i / 4096) % 26);
}

static int is_pattern(const char *b, long off, long len)
{
    for (long i = 0; i < len; i++)
        if (b[i] != pattern(off + i))
            return 0;
    return 1;
}

static int run(const char *prog, const char *a1, const char *a2, const char *a3)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(prog, prog, a1, a2, a3, (char *)NULL);
        _exit(127);
    }
    int st;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_control(void)
{
    int n = get_free();
    CHECK(n >= 0);
    int lfd = open_loop(n, O_RDWR);
    CHECK(lfd >= 0);
    struct stat st;
    CHECK(fstat(lfd, &st) == 0 && S_ISBLK(st.st_mode) && major(st.st_rdev) == 7 && (int)minor(st.st_rdev) == n);
    CHECK(st.st_size == 0);
    struct loop_info64 li;
    CHECK(ioctl(lfd, LOOP_GET_STATUS64, &li) == -1 && errno == ENXIO);
    CHECK(size64(lfd) == 0);
    char c;
    CHECK(read(lfd, &c, 1) == 0);
    close(lfd);

    /* LOOP_CTL_ADD of a number not in use, twice; REMOVE twice. */
    int k = -1;
    for (int i = 200; i < 400 && k < 0; i++) {
        int r = ioctl(ctl, LOOP_CTL_ADD, i);
        if (r == i)
            k = i;
        else if (errno != EEXIST)
            break;
    }
    CHECK(k >= 200);
    if (k < 0)
        return;
    made[nmade++] = k;
    CHECK(ioctl(ctl, LOOP_CTL_ADD, k) == -1 && errno == EEXIST);
    int kfd = open_loop(k, O_RDONLY);
    CHECK(kfd >= 0);
    if (kfd >= 0)
        close(kfd);
    CHECK(ioctl(ctl, LOOP_CTL_REMOVE, k) == 0);
    nmade--;
    CHECK(ioctl(ctl, LOOP_CTL_REMOVE, k) == -1 && errno == ENODEV);
    CHECK(ioctl(ctl, LOOP_CTL_REMOVE, 1000000) == -1 && errno == ENODEV);

    /* The nodes are root's and group disk's: another user cannot open them. */
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(2);
        char path[32];
        snprintf(path, sizeof path, "/dev/loop%d", n);
        int a = open("/dev/loop-control", O_RDWR) == -1 && errno == EACCES;
        int b = open(path, O_RDONLY) == -1 && errno == EACCES;
        _exit(a && b ? 0 : 1);
    }
    int status;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_bound(void)
{
    int bfd = open(P("img"), O_RDWR);
    REQUIRE(bfd >= 0);
    struct stat bst;
    REQUIRE(fstat(bfd, &bst) == 0);
    int n = get_free();
    int lfd = open_loop(n, O_RDWR);
    REQUIRE(lfd >= 0);
    CHECK(ioctl(lfd, LOOP_SET_FD, -1) == -1 && errno == EBADF);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(ioctl(lfd, LOOP_SET_FD, dfd) == -1 && errno == EINVAL);
    close(dfd);
    /* Itself as its file: refused. */
    CHECK(ioctl(lfd, LOOP_SET_FD, lfd) == -1 && errno == EBADF);
    CHECK(bind(&n, &lfd, O_RDWR, bfd, LOOP_SET_FD, (void *)(long)bfd) == 0);
    CHECK(ioctl(lfd, LOOP_SET_FD, bfd) == -1 && errno == EBUSY);
    CHECK(ioctl(ctl, LOOP_CTL_REMOVE, n) == -1 && errno == EBUSY);

    /* The block ioctls. */
    CHECK(size64(lfd) == MIB);
    unsigned long sectors = 0;
    CHECK(ioctl(lfd, BLKGETSIZE, &sectors) == 0 && sectors == MIB / 512);
    int ssz = 0, bsz = 0, ro = -1;
    unsigned pbsz = 0;
    CHECK(ioctl(lfd, BLKSSZGET, &ssz) == 0 && ssz == 512);
    CHECK(ioctl(lfd, BLKPBSZGET, &pbsz) == 0 && pbsz >= 512 && (pbsz & (pbsz - 1)) == 0);
    CHECK(ioctl(lfd, BLKBSZGET, &bsz) == 0 && bsz >= 512);
    CHECK(ioctl(lfd, BLKROGET, &ro) == 0 && ro == 0);
    CHECK(lseek(lfd, 0, SEEK_END) == MIB);

    /* Data: reads see the file, writes reach it. */
    static char buf[8192];
    CHECK(pread(lfd, buf, 4096, 8192) == 4096 && is_pattern(buf, 8192, 4096));
    CHECK(pwrite(lfd, "hello", 5, 12288) == 5);
    CHECK(fsync(lfd) == 0);
    CHECK(pread(bfd, buf, 5, 12288) == 5 && memcmp(buf, "hello", 5) == 0);

    /* Status. */
    struct loop_info64 li;
    memset(&li, 0xff, sizeof li);
    CHECK(ioctl(lfd, LOOP_GET_STATUS64, &li) == 0);
    CHECK(li.lo_number == (uint32_t)n && li.lo_offset == 0 && li.lo_sizelimit == 0);
    CHECK(li.lo_inode == bst.st_ino && li.lo_device == bst.st_dev);
    CHECK((li.lo_flags & (LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR)) == 0);
    li.lo_encrypt_type = 1;
    CHECK(ioctl(lfd, LOOP_SET_STATUS64, &li) == -1 && errno == EINVAL);
    li.lo_encrypt_type = 0;
    li.lo_offset = 4096;
    li.lo_sizelimit = 8192;
    li.lo_flags |= LO_FLAGS_AUTOCLEAR;
    memset(li.lo_file_name, 0, sizeof li.lo_file_name);
    strcpy((char *)li.lo_file_name, "vk-loop-test");
    CHECK(ioctl(lfd, LOOP_SET_STATUS64, &li) == 0);
    memset(&li, 0, sizeof li);
    CHECK(ioctl(lfd, LOOP_GET_STATUS64, &li) == 0);
    CHECK(li.lo_offset == 4096 && li.lo_sizelimit == 8192 && (li.lo_flags & LO_FLAGS_AUTOCLEAR));
    CHECK(strcmp((char *)li.lo_file_name, "vk-loop-test") == 0);
    CHECK(size64(lfd) == 8192 && lseek(lfd, 0, SEEK_END) == 8192);
    CHECK(pread(lfd, buf, 4096, 0) == 4096 && is_pattern(buf, 4096, 4096));
    CHECK(pread(lfd, buf, 4096, 8192) == 0);
    CHECK(pwrite(lfd, "x", 1, 8192) == -1 && errno == ENOSPC);

    /* LOOP_SET_CAPACITY: the file grew. */
    li.lo_sizelimit = 0;
    CHECK(ioctl(lfd, LOOP_SET_STATUS64, &li) == 0 && size64(lfd) == MIB - 4096);
    CHECK(ftruncate(bfd, 2 * MIB) == 0);
    CHECK(size64(lfd) == MIB - 4096);
    CHECK(ioctl(lfd, LOOP_SET_CAPACITY, 0) == 0 && size64(lfd) == 2 * MIB - 4096);
    CHECK(ftruncate(bfd, MIB) == 0);

    /* The old LOOP_GET_STATUS and LOOP_SET_STATUS (struct loop_info). */
    struct loop_info old;
    memset(&old, 0xff, sizeof old);
    CHECK(ioctl(lfd, LOOP_GET_STATUS, &old) == 0);
    CHECK(old.lo_number == n && old.lo_offset == 4096 && old.lo_inode == bst.st_ino);
    CHECK(strcmp(old.lo_name, "vk-loop-test") == 0 && (old.lo_flags & LO_FLAGS_AUTOCLEAR));
    memset(&old, 0, sizeof old);
    strcpy(old.lo_name, "old-style");
    CHECK(ioctl(lfd, LOOP_SET_STATUS, &old) == 0);
    CHECK(ioctl(lfd, LOOP_GET_STATUS64, &li) == 0 && li.lo_offset == 0 && li.lo_sizelimit == 0);
    CHECK(strcmp((char *)li.lo_file_name, "old-style") == 0 && !(li.lo_flags & LO_FLAGS_AUTOCLEAR));
    CHECK(size64(lfd) == MIB);

    /* LOOP_CLR_FD: unbound once this descriptor (its last user) is closed. */
    CHECK(ioctl(lfd, LOOP_CLR_FD, 0) == 0);
    close(lfd);
    CHECK(unbound_soon(n));
    close(bfd);
}

static void test_readonly_configure(void)
{
    /* A file open for reading only makes a read-only device. */
    int bro = open(P("img"), O_RDONLY);
    REQUIRE(bro >= 0);
    int n = get_free();
    int lfd = open_loop(n, O_RDWR);
    REQUIRE(lfd >= 0);
    CHECK(bind(&n, &lfd, O_RDWR, bro, LOOP_SET_FD, (void *)(long)bro) == 0);
    int ro = -1;
    CHECK(ioctl(lfd, BLKROGET, &ro) == 0 && ro == 1);
    struct loop_info64 li;
    CHECK(ioctl(lfd, LOOP_GET_STATUS64, &li) == 0 && (li.lo_flags & LO_FLAGS_READ_ONLY));
    CHECK(pwrite(lfd, "x", 1, 0) == -1 && errno == EPERM);
    char c = 0;
    CHECK(pread(lfd, &c, 1, 5000) == 1 && c == pattern(5000));
    CHECK(ioctl(lfd, LOOP_CLR_FD, 0) == 0);
    close(lfd);
    CHECK(unbound_soon(n));
    close(bro);

    /* LOOP_CONFIGURE: checks, then a read-only autoclear binding at an offset. */
    int bfd = open(P("img"), O_RDWR);
    REQUIRE(bfd >= 0);
    n = get_free();
    lfd = open_loop(n, O_RDWR);
    REQUIRE(lfd >= 0);
    struct loop_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.fd = (uint32_t)bfd;
    cfg.block_size = 1000;
    CHECK(ioctl(lfd, LOOP_CONFIGURE, &cfg) == -1 && errno == EINVAL);
    cfg.block_size = 0;
    cfg.info.lo_flags = 0x100;
    CHECK(ioctl(lfd, LOOP_CONFIGURE, &cfg) == -1 && errno == EINVAL);
    cfg.fd = (uint32_t)-1;
    cfg.info.lo_flags = 0;
    CHECK(ioctl(lfd, LOOP_CONFIGURE, &cfg) == -1 && errno == EBADF);
    cfg.fd = (uint32_t)bfd;
    cfg.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
    cfg.info.lo_offset = 65536;
    CHECK(bind(&n, &lfd, O_RDWR, bfd, LOOP_CONFIGURE, &cfg) == 0);
    CHECK(ioctl(lfd, BLKROGET, &ro) == 0 && ro == 1);
    CHECK(size64(lfd) == MIB - 65536);
    CHECK(pread(lfd, &c, 1, 0) == 1 && c == pattern(65536));
    CHECK(ioctl(lfd, LOOP_CONFIGURE, &cfg) == -1 && errno == EBUSY);
    /* Autoclear: the last close unbinds it. */
    close(lfd);
    CHECK(unbound_soon(n));
    close(bfd);
}

static void test_mount(void)
{
    const char *img = P("fs.img");
    int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    CHECK(ftruncate(fd, 4 * MIB) == 0);
    close(fd);
    CHECK(run("/sbin/mke2fs", "-q", "-F", img) == 0);
    const char *mnt = P("mnt");
    CHECK(mkdir(mnt, 0755) == 0);

    int bfd = open(img, O_RDWR);
    int n = get_free();
    int lfd = open_loop(n, O_RDWR);
    REQUIRE(bfd >= 0 && lfd >= 0);
    CHECK(bind(&n, &lfd, O_RDWR, bfd, LOOP_SET_FD, (void *)(long)bfd) == 0);
    close(bfd);
    /* As mount -o loop: autoclear, then only the mount holds the device. */
    struct loop_info64 li;
    CHECK(ioctl(lfd, LOOP_GET_STATUS64, &li) == 0);
    li.lo_flags |= LO_FLAGS_AUTOCLEAR;
    CHECK(ioctl(lfd, LOOP_SET_STATUS64, &li) == 0);
    char dev[32];
    snprintf(dev, sizeof dev, "/dev/loop%d", n);
    CHECK(mount(dev, mnt, "ext2", 0, NULL) == 0);
    close(lfd);
    /* The mount keeps it bound. */
    lfd = open_loop(n, O_RDONLY);
    CHECK(lfd >= 0 && ioctl(lfd, LOOP_GET_STATUS64, &li) == 0);
    close(lfd);

    const char *x = P("mnt/x");
    int f = open(x, O_RDWR | O_CREAT, 0644);
    CHECK(f >= 0 && write(f, "hi\n", 3) == 3);
    const char *y = P("mnt/y");
    int g = open(y, O_RDWR | O_CREAT, 0644);
    CHECK(g >= 0);
    /* fallocate on ext2: mode 0 allocates (Linux's ext2 refuses it: either is right). */
    struct stat st;
    int r = (int)syscall(SYS_fallocate, g, 0, 0L, 65536L);
    CHECK(r == 0 ? fstat(g, &st) == 0 && st.st_size == 65536 && st.st_blocks * 512 >= 65536 : errno == EOPNOTSUPP);
    static char xs[65536], back[65536];
    memset(xs, 'x', sizeof xs);
    CHECK(pwrite(g, xs, sizeof xs, 0) == (ssize_t)sizeof xs);
    CHECK(fstat(g, &st) == 0);
    long long before = (long long)st.st_blocks;
    CHECK(syscall(SYS_fallocate, g, 3, 8192L, 16384L) == 0);
    CHECK(fstat(g, &st) == 0 && st.st_size == 65536 && st.st_blocks < before);
    CHECK(pread(g, back, sizeof back, 0) == (ssize_t)sizeof back);
    int ok = 1;
    for (int i = 0; i < 65536; i++)
        ok &= back[i] == ((i >= 8192 && i < 24576) ? 0 : 'x');
    CHECK(ok);
    close(g);
    close(f);
    CHECK(umount(mnt) == 0);
    /* The mount was its last user: autoclear unbound it. */
    CHECK(unbound_soon(n));

    /* Mounted again, read-only: what was written is there. */
    bfd = open(img, O_RDONLY);
    n = get_free();
    lfd = open_loop(n, O_RDONLY);
    REQUIRE(bfd >= 0 && lfd >= 0);
    CHECK(bind(&n, &lfd, O_RDONLY, bfd, LOOP_SET_FD, (void *)(long)bfd) == 0);
    close(bfd);
    snprintf(dev, sizeof dev, "/dev/loop%d", n);
    CHECK(mount(dev, mnt, "ext2", MS_RDONLY, NULL) == 0);
    char buf[8] = { 0 };
    f = open(x, O_RDONLY);
    CHECK(f >= 0 && read(f, buf, sizeof buf) == 3 && memcmp(buf, "hi\n", 3) == 0);
    if (f >= 0)
        close(f);
    g = open(y, O_RDONLY);
    CHECK(g >= 0 && pread(g, back, 4, 10000) == 4 && memcmp(back, "\0\0\0\0", 4) == 0);
    if (g >= 0)
        close(g);
    CHECK(umount(mnt) == 0);
    CHECK(ioctl(lfd, LOOP_CLR_FD, 0) == 0);
    close(lfd);
    CHECK(unbound_soon(n));
    CHECK(rmdir(mnt) == 0);
    CHECK(unlink(img) == 0);
}

/* Detach what this program bound (if still bound to its file) and remove what it made. */
static void clean_up(void)
{
    for (int i = 0; i < nused; i++) {
        int fd = open_loop(used[i].n, O_RDONLY);
        struct loop_info64 li;
        if (fd >= 0) {
            if (ioctl(fd, LOOP_GET_STATUS64, &li) == 0 && li.lo_inode == used[i].ino)
                ioctl(fd, LOOP_CLR_FD, 0);
            close(fd);
        }
    }
    for (int i = 0; i < nmade; i++)
        ioctl(ctl, LOOP_CTL_REMOVE, made[i]);
}

int main(void)
{
    vktest_reset_signals();
    ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0 && errno == ENOENT) {
        vktest_print("no /dev/loop-control: nothing to test\n");
        return vktest_done();
    }
    REQUIRE(ctl >= 0);
    if (unshare(CLONE_NEWNS) == 0)
        REQUIRE(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
    else
        REQUIRE(errno == ENOSYS || errno == EINVAL);
    strcpy(dir, "/tmp/vklo.XXXXXX");
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return vktest_done();
    }
    int fd = open(P("img"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    static char blk[4096];
    int written = 1;
    for (long off = 0; off < MIB; off += 4096) {
        memset(blk, pattern(off), sizeof blk);
        written &= write(fd, blk, sizeof blk) == (ssize_t)sizeof blk;
    }
    REQUIRE(written);
    close(fd);

    test_control();
    test_bound();
    test_readonly_configure();
    test_mount();
    clean_up();
    CHECK(unlink(P("img")) == 0);
    CHECK(rmdir(dir) == 0);
    return vktest_done();
}
