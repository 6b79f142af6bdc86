/*
 * t_chroot — chroot(2): absolute paths start at the new root, `..` stops there, getcwd
 * prints relative to it, symbolic links with absolute targets resolve inside it, children
 * inherit it; a working directory outside stays outside. Refusals: EPERM without
 * CAP_SYS_CHROOT, EACCES without search permission, ENOTDIR, ENOENT, ELOOP, EFAULT.
 */
#include "vktest.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define DIR "/tmp/t_chroot.d"

static void setup(void)
{
    mkdir(DIR, 0755);
    mkdir(DIR "/sub", 0755);
    mkdir(DIR "/locked", 0700);
    mkdir(DIR "/locked/in", 0755);
    int fd = open(DIR "/inside", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    close(fd);
    fd = open(DIR "/file", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    close(fd);
    symlink("/inside", DIR "/sub/abs");
    symlink("loop2", DIR "/loop1");
    symlink("loop1", DIR "/loop2");
}

static void cleanup(void)
{
    unlink(DIR "/sub/abs");
    unlink(DIR "/loop1");
    unlink(DIR "/loop2");
    unlink(DIR "/inside");
    unlink(DIR "/file");
    rmdir(DIR "/sub");
    rmdir(DIR "/locked/in");
    rmdir(DIR "/locked");
    rmdir(DIR);
}

/* In a child: the checks of a process whose root is DIR. Returns its failures. */
static void child_inside(void)
{
    CHECK(chdir(DIR "/sub") == 0);
    CHECK(chroot(DIR) == 0);
    struct stat st;
    CHECK(stat("/inside", &st) == 0);
    errno = 0;
    CHECK(stat("/tmp", &st) == -1 && errno == ENOENT);
    /* The working directory was under the new root: it prints from there. */
    char buf[256];
    CHECK(getcwd(buf, sizeof buf) && strcmp(buf, "/sub") == 0);
    /* `..` stops at the root. */
    CHECK(stat("../../../../inside", &st) == 0);
    CHECK(stat("/../../inside", &st) == 0);
    CHECK(chdir("../../..") == 0);
    CHECK(getcwd(buf, sizeof buf) && strcmp(buf, "/") == 0);
    /* An absolute symbolic link resolves inside. */
    CHECK(stat("/sub/abs", &st) == 0 && S_ISREG(st.st_mode));
    /* A child inherits it. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(access("/inside", F_OK) == 0 && access("/tmp", F_OK) != 0 ? 0 : 1);
    int s;
    CHECK(waitpid(pid, &s, 0) == pid && WIFEXITED(s) && WEXITSTATUS(s) == 0);
    /* A nested chroot, then `/` is the inner one. */
    CHECK(chroot("/sub") == 0);
    CHECK(stat("/abs", &st) == -1);
    CHECK(access("/inside", F_OK) == -1);
    vktest_child_done();
}

static void child_outside_cwd(void)
{
    /* The working directory is outside the new root: it stays where it is. */
    CHECK(chdir("/tmp") == 0);
    CHECK(chroot(DIR "/sub") == 0);
    struct stat st;
    CHECK(stat("t_chroot.d/inside", &st) == 0);
    CHECK(stat("/abs", &st) == -1 && errno == ENOENT); /* /inside is not in /sub */
    CHECK(chdir("/") == 0);
    char buf[256];
    CHECK(getcwd(buf, sizeof buf) && strcmp(buf, "/") == 0);
    errno = 0;
    CHECK(stat("t_chroot.d", &st) == -1 && errno == ENOENT);
    vktest_child_done();
}

static void child_nobody(uid_t nobody)
{
    /* EACCES comes before EPERM: no search permission on locked. */
    if (setuid(nobody) != 0)
        _exit(99);
    errno = 0;
    CHECK(chroot(DIR "/sub") == -1 && errno == EPERM);
    errno = 0;
    CHECK(chroot(DIR "/locked/in") == -1 && errno == EACCES);
    vktest_child_done();
}

static int run_child(void (*fn)(void))
{
    pid_t pid = fork();
    if (pid == 0)
        fn();
    int s;
    return waitpid(pid, &s, 0) == pid && WIFEXITED(s) ? WEXITSTATUS(s) : -1;
}

int main(void)
{
    vktest_reset_signals();
    cleanup();
    setup();
    CHECK(run_child(child_inside) == 0);
    CHECK(run_child(child_outside_cwd) == 0);
    struct passwd *pw = getpwnam("nobody");
    uid_t nobody = pw ? pw->pw_uid : 65534;
    pid_t pid = fork();
    if (pid == 0)
        child_nobody(nobody);
    int s;
    CHECK(waitpid(pid, &s, 0) == pid && WIFEXITED(s) && WEXITSTATUS(s) == 0);
    /* Refusals of the lookup. */
    errno = 0;
    CHECK(chroot(DIR "/file") == -1 && errno == ENOTDIR);
    errno = 0;
    CHECK(chroot(DIR "/none") == -1 && errno == ENOENT);
    errno = 0;
    CHECK(chroot(DIR "/loop1") == -1 && errno == ELOOP);
    errno = 0;
    CHECK(chroot(BAD_PTR(-1)) == -1 && errno == EFAULT);
    /* This process's root is unchanged. */
    CHECK(access("/tmp", F_OK) == 0);
    cleanup();
    vktest_done();
}
