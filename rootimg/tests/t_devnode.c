/*
 * t_devnode — device nodes made with mknod(2) as root on tmpfs: their type and number in
 * stat, opening one reaches the device of that number (null, zero, full), a number with no
 * device is ENXIO, EPERM without CAP_MKNOD; open(2) of a directory with O_CREAT is EISDIR.
 */
#include "vktest.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#define DIR "/tmp/t_devnode.d"

int main(void)
{
    vktest_reset_signals();
    unlink(DIR "/null");
    unlink(DIR "/zero");
    unlink(DIR "/full");
    unlink(DIR "/blk");
    unlink(DIR "/none");
    rmdir(DIR);
    REQUIRE(mkdir(DIR, 0755) == 0);
    CHECK(mknod(DIR "/null", S_IFCHR | 0666, makedev(1, 3)) == 0);
    CHECK(mknod(DIR "/zero", S_IFCHR | 0644, makedev(1, 5)) == 0);
    CHECK(mknodat(AT_FDCWD, DIR "/full", S_IFCHR | 0666, makedev(1, 7)) == 0);
    CHECK(mknod(DIR "/blk", S_IFBLK | 0600, makedev(240, 3)) == 0);
    CHECK(mknod(DIR "/none", S_IFCHR | 0600, makedev(250, 17)) == 0);
    struct stat st;
    CHECK(stat(DIR "/zero", &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 5);
    CHECK((st.st_mode & 07777) == (0644 & ~umask(022)));
    CHECK(stat(DIR "/blk", &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == makedev(240, 3));
    errno = 0;
    CHECK(mknod(DIR "/null", S_IFCHR | 0666, makedev(1, 3)) == -1 && errno == EEXIST);

    int fd = open(DIR "/null", O_RDWR);
    CHECK(fd >= 0);
    char buf[8] = "xxxxxxx";
    CHECK(write(fd, "abc", 3) == 3);
    CHECK(read(fd, buf, sizeof buf) == 0);
    /* The descriptor stats as the node it was opened through. */
    CHECK(fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
    close(fd);
    fd = open(DIR "/zero", O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, sizeof buf) == (ssize_t)sizeof buf && buf[0] == 0 && buf[7] == 0);
    close(fd);
    fd = open(DIR "/full", O_WRONLY);
    errno = 0;
    CHECK(fd >= 0 && write(fd, "a", 1) == -1 && errno == ENOSPC);
    close(fd);
    errno = 0;
    CHECK(open(DIR "/none", O_RDONLY) == -1 && errno == ENXIO);
    errno = 0;
    CHECK(open(DIR "/blk", O_RDONLY) == -1 && errno == ENXIO);
    /* O_PATH does not reach the device. */
    fd = open(DIR "/none", O_PATH);
    CHECK(fd >= 0);
    close(fd);

    /* Without CAP_MKNOD: EPERM (FIFOs are fine). */
    struct passwd *pw = getpwnam("nobody");
    uid_t nobody = pw ? pw->pw_uid : 65534;
    CHECK(chmod(DIR, 0777) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        if (setuid(nobody) != 0)
            _exit(10);
        if (mknod(DIR "/u", S_IFCHR | 0600, makedev(1, 3)) != -1 || errno != EPERM)
            _exit(11);
        if (mknod(DIR "/fifo", S_IFIFO | 0600, 0) != 0)
            _exit(12);
        _exit(0);
    }
    int s;
    CHECK(waitpid(pid, &s, 0) == pid && WIFEXITED(s) && WEXITSTATUS(s) == 0);
    unlink(DIR "/fifo");

    /* O_CREAT on an existing directory. */
    errno = 0;
    CHECK(open(DIR, O_RDONLY | O_CREAT, 0644) == -1 && errno == EISDIR);

    unlink(DIR "/null");
    unlink(DIR "/zero");
    unlink(DIR "/full");
    unlink(DIR "/blk");
    unlink(DIR "/none");
    rmdir(DIR);
    vktest_done();
}
