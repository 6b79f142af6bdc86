/*
 * t_perm — file permissions (Linux's discretionary access control), credentials and
 * capabilities, as root and as an unprivileged user.
 *
 * Must run as root. "The user" is a forked child that drops to uid 1000, gid 1000 with the
 * supplementary group 1001 (setgroups, setresgid, setresuid); its checks count with the
 * parent's. Two places are used:
 *   - the staged tree `perm/` beside this program (rootimg/stage.sh gives it fixed owners and
 *     modes; under vk it is on the read-only hostfs root or in the ext2 root image): search
 *     permission on every directory of a path, read, list, execute, access(2), setuid and
 *     setgid executables and AT_SECURE. Nothing there is written.
 *   - a scratch directory made under argv[1] (default /tmp): every rule that changes
 *     something — open's access modes and O_TRUNC/O_CREAT, create/unlink/rmdir/rename/link
 *     with write and search permission on the directories, sticky directories, umask,
 *     setgid directories, chmod/chown/chgrp/utimensat/truncate rules, setuid/setgid bits
 *     cleared by a write, a truncate or a chown (also one with both ids -1), and exec's
 *     execute bits.
 *   - two tmpfs mounted in the scratch directory, one read-only and one noexec: a change
 *     there is EROFS before any permission is asked (the user opening for writing a file it
 *     may not write, chmod of another's file, ...), and access(X_OK) of a file on the
 *     noexec one is EACCES. Natively these mounts are made in a private mount namespace.
 * Credentials: access/faccessat with the real ids and AT_EACCESS (faccessat2) with the
 * effective ones, capget for root and after each id change (setresuid's rules for the
 * permitted and effective sets), setfsuid, setgroups/setuid refused to the user, mount(2)
 * and umount2(2) refused to the user, another user's /proc/PID/fd closed to it, and (Linux's
 * ptrace_may_access) its /proc/PID/maps, exe link and stat's addresses too.
 *
 * Linux-specific: fs.protected_hardlinks = 1 (what the host distributions set, and what vk
 * implements): a user may not hard-link a file it does not own unless it could read and
 * write it and it is not setuid (the native run refuses to start otherwise). A chown(2) of
 * a regular file clears its setuid bit and its setgid bit when group-execute is set, even
 * for root; a write by a user clears a setgid bit without group-execute (a locking mark) only
 * when the user is not in the file's group (Linux 6.x's setattr_should_drop_sgid).
 *
 * Capability sets are compared with root's own permitted set (the bounding set), never with
 * a constant, so a host that drops some capabilities gives the same answers.
 */
#include "vktest.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdint.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define USER_UID 1000
#define USER_GID 1000
#define USER_GRP 1001  /* a supplementary group of the user */
#define OTHER_GRP 42   /* a group the user is not in */

#define CAP_VERSION_3 0x20080522
#ifndef CAP_KILL
#define CAP_CHOWN 0
#define CAP_KILL 5
#endif

static char scratch[256];
static int treefd = -1;
/* Root's permitted capabilities (what a setuid-root exec gains). */
static uint64_t root_prm;

/* A path in the scratch directory; four rotating buffers so a call can take two. */
static const char *S(const char *name)
{
    static char bufs[4][320];
    static int next;
    char *b = bufs[next++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s", scratch, name);
    return b;
}

/* The path through which a descriptor's file can be executed. */
static const char *fdpath(int fd)
{
    static char b[64];
    snprintf(b, sizeof b, "/proc/self/fd/%d", fd);
    return b;
}

static int fails(int r, int err)
{
    return r == -1 && errno == err;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return (mode_t)-1;
    return st.st_mode & 07777;
}

static int put(const char *path, mode_t mode, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    if (n != (ssize_t)strlen(text))
        return -1;
    return chmod(path, mode);
}

/* Copy the staged h_ids (an executable that prints its ids) to `path` with `mode`. */
static int put_prog(const char *path, mode_t mode)
{
    int in = openat(treefd, "prog", O_RDONLY);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0700);
    if (in < 0 || out < 0)
        return -1;
    char buf[8192];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n)
            return -1;
    close(in);
    close(out);
    return chmod(path, mode);
}

static int mkdir_mode(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
    if (mkdir(path, 0700) != 0 || chown(path, uid, gid) != 0)
        return -1;
    return chmod(path, mode);
}

static uint64_t capget_sets(uint64_t *prm)
{
    struct {
        uint32_t version;
        int pid;
    } hdr = {CAP_VERSION_3, 0};
    struct {
        uint32_t effective, permitted, inheritable;
    } d[2];
    memset(d, 0, sizeof d);
    if (syscall(SYS_capget, &hdr, d) != 0) {
        *prm = ~0ull;
        return ~0ull;
    }
    *prm = (uint64_t)d[1].permitted << 32 | d[0].permitted;
    return (uint64_t)d[1].effective << 32 | d[0].effective;
}

/*
 * Execute `path` (h_ids) in a child with its output on a pipe: 0 with its line (without the
 * newline) in `out`, or the errno execve failed with.
 */
static int run_ids(const char *path, char *out, size_t cap)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        char *argv[] = {"h_ids", NULL};
        char *envp[] = {NULL};
        execve(path, argv, envp);
        char msg[32];
        int n = snprintf(msg, sizeof msg, "errno=%d", errno);
        if (write(1, msg, (size_t)n) != n)
            _exit(126);
        _exit(127);
    }
    close(p[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < cap && (n = read(p[0], out + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = 0;
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    int e;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && sscanf(out, "errno=%d", &e) == 1)
        return e;
    if (got > 0 && out[got - 1] == '\n')
        out[got - 1] = 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* What h_ids prints for the given ids, AT_SECURE and capability sets. */
static const char *ids_line(unsigned ru, unsigned eu, unsigned su, unsigned rg, unsigned eg, unsigned sg, int secure,
                            uint64_t eff, uint64_t prm)
{
    static char b[160];
    snprintf(b, sizeof b, "uid=%u,%u,%u gid=%u,%u,%u secure=%d eff=%llx prm=%llx", ru, eu, su, rg, eg, sg, secure,
             (unsigned long long)eff, (unsigned long long)prm);
    return b;
}

static int become_user(void)
{
    gid_t g = USER_GRP;
    if (setgroups(1, &g) != 0 || setresgid(USER_GID, USER_GID, USER_GID) != 0)
        return -1;
    return setresuid(USER_UID, USER_UID, USER_UID);
}

/* Real ids the user's, effective and saved ids root's. */
static int become_real_user(void)
{
    gid_t g = USER_GRP;
    if (setgroups(1, &g) != 0 || setresgid(USER_GID, USER_GID, USER_GID) != 0)
        return -1;
    return setresuid(USER_UID, 0, 0);
}

/* Run `fn` in a forked child after `setup`; the child's checks count in this process. */
static void in_child(const char *what, int (*setup)(void), void (*fn)(void))
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        vktest_passed = vktest_failed = 0;
        if (setup() != 0) {
            vktest_print("FAIL %s: cannot change credentials (errno %d)\n", what, errno);
            _exit(100);
        }
        fn();
        int counts[2] = {vktest_passed, vktest_failed};
        if (write(p[1], counts, sizeof counts) != (ssize_t)sizeof counts)
            _exit(101);
        _exit(0);
    }
    close(p[1]);
    int counts[2] = {0, 0};
    ssize_t n = read(p[0], counts, sizeof counts);
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    vktest_passed += counts[0];
    vktest_failed += counts[1];
    CHECKF(n == (ssize_t)sizeof counts && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: child status %#x", what, st);
}

/* ---- the staged tree (read side) ---- */

static int tree_open(const char *name, int flags)
{
    return openat(treefd, name, flags);
}

static int readable_tree(const char *name, const char *want)
{
    int fd = tree_open(name, O_RDONLY);
    if (fd < 0)
        return 0;
    char buf[64] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n == (ssize_t)strlen(want) && memcmp(buf, want, (size_t)n) == 0;
}

static int lists(int dirfd, const char *name)
{
    DIR *d = fdopendir(dirfd);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        found |= strcmp(e->d_name, name) == 0;
    closedir(d);
    return found;
}

static void exec_tree(const char *name, const char *want, int want_errno)
{
    int fd = tree_open(name, O_PATH);
    CHECKF(fd >= 0, "%s", name);
    char out[200];
    int r = run_ids(fdpath(fd), out, sizeof out);
    if (want_errno)
        CHECKF(r == want_errno, "exec %s: %d (%s)", name, r, out);
    else
        CHECKF(r == 0 && strcmp(out, want) == 0, "exec %s: %d: '%s', want '%s'", name, r, out, want);
    close(fd);
}

static void user_tree(void)
{
    struct stat st;
    CHECK(fails(tree_open("secret", O_RDONLY), EACCES));
    CHECK(readable_tree("public", "public\n"));
    CHECK(readable_tree("grp", "group\n"));                /* a supplementary group */
    CHECK(fails(tree_open("grp_no", O_RDONLY), EACCES));
    CHECK(fails(tree_open("mine0077", O_RDONLY), EACCES)); /* the owner class only */
    /* Search permission on every directory of a path. */
    CHECK(fails(tree_open("closed/inside", O_RDONLY), EACCES));
    CHECK(fails(fstatat(treefd, "closed/inside", &st, 0), EACCES));
    CHECK(fails(fstatat(treefd, "closed/nothing", &st, 0), EACCES));
    CHECK(fstatat(treefd, "closed", &st, 0) == 0);
    CHECK(fails(tree_open("closed", O_RDONLY | O_DIRECTORY), EACCES));
    int fd = tree_open("closed", O_PATH);
    CHECK(fd >= 0 && fails(fchdir(fd), EACCES));
    close(fd);
    /* Execute without read: names work, listing does not. */
    CHECK(readable_tree("noread/inside", "inside\n"));
    CHECK(fails(tree_open("noread", O_RDONLY | O_DIRECTORY), EACCES));
    /* Read without execute: listing works, names do not. */
    fd = tree_open("nosearch", O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0 && lists(fd, "inside"));
    CHECK(fails(fstatat(treefd, "nosearch/inside", &st, 0), EACCES));
    CHECK(fails(tree_open("nosearch/inside", O_RDONLY), EACCES));
    /* access(2). */
    CHECK(fails(faccessat(treefd, "secret", R_OK, 0), EACCES));
    CHECK(faccessat(treefd, "public", R_OK, 0) == 0);
    CHECK(fails(faccessat(treefd, "public", X_OK, 0), EACCES));
    CHECK(faccessat(treefd, "prog", R_OK | X_OK, 0) == 0);
    CHECK(fails(faccessat(treefd, "closed/inside", F_OK, 0), EACCES));
    CHECK(faccessat(treefd, "grp", R_OK, AT_EACCESS) == 0);
    /* exec: the execute bit; setuid and setgid executables. */
    exec_tree("prog", ids_line(1000, 1000, 1000, 1000, 1000, 1000, 0, 0, 0), 0);
    exec_tree("prog_noexec", NULL, EACCES);
    exec_tree("prog_user", ids_line(1000, 1000, 1000, 1000, 1000, 1000, 0, 0, 0), 0);
    exec_tree("suid", ids_line(1000, 0, 0, 1000, 1000, 1000, 1, root_prm, root_prm), 0);
    exec_tree("sgid", ids_line(1000, 1000, 1000, 1000, 42, 42, 1, 0, 0), 0);
}

static void root_tree(void)
{
    struct stat st;
    CHECK(readable_tree("secret", "secret\n"));
    CHECK(readable_tree("closed/inside", "inside\n"));
    CHECK(readable_tree("nosearch/inside", "inside\n"));
    CHECK(readable_tree("mine0077", "mine\n"));
    int fd = tree_open("noread", O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0 && lists(fd, "inside"));
    CHECK(fstatat(treefd, "closed/inside", &st, 0) == 0 && st.st_uid == 0 && (st.st_mode & 07777) == 0644);
    CHECK(fstatat(treefd, "suid", &st, 0) == 0 && (st.st_mode & 07777) == 04755 && st.st_uid == 0);
    CHECK(fstatat(treefd, "sgid", &st, 0) == 0 && (st.st_mode & 07777) == 02755 && st.st_gid == OTHER_GRP);
    CHECK(fstatat(treefd, "grp", &st, 0) == 0 && st.st_gid == USER_GRP && (st.st_mode & 0777) == 0640);
    CHECK(faccessat(treefd, "secret", R_OK, 0) == 0);
    CHECK(fails(faccessat(treefd, "prog_noexec", X_OK, 0), EACCES)); /* root needs an x bit */
    CHECK(faccessat(treefd, "prog_user", X_OK, 0) == 0);
    CHECK(faccessat(treefd, "closed", X_OK, 0) == 0);
    exec_tree("prog_noexec", NULL, EACCES);
    exec_tree("prog_user", ids_line(0, 0, 0, 0, 0, 0, 0, root_prm, root_prm), 0);
    exec_tree("suid_user", ids_line(0, 1000, 1000, 0, 0, 0, 1, 0, root_prm), 0);
}

/* ---- the scratch directory (write side) ---- */

static void make_scratch(void)
{
    REQUIRE(chmod(scratch, 0755) == 0);
    REQUIRE(put(S("rootfile"), 0600, "root\n") == 0);
    REQUIRE(put(S("rootpub"), 0644, "pub\n") == 0);
    REQUIRE(put(S("rootww"), 0666, "ww\n") == 0);
    REQUIRE(put(S("suidww"), 04666, "suid\n") == 0);
    REQUIRE(mkdir_mode(S("rootdir"), 0700, 0, 0) == 0);
    REQUIRE(put(S("rootdir/f"), 0644, "f\n") == 0);
    REQUIRE(mkdir_mode(S("pubdir"), 0777, 0, 0) == 0);
    REQUIRE(put(S("pubdir/rootf"), 0644, "r\n") == 0);
    REQUIRE(mkdir_mode(S("pubdir/rootsub"), 0755, 0, 0) == 0);
    REQUIRE(mkdir_mode(S("sticky"), 01777, 0, 0) == 0);
    REQUIRE(put(S("sticky/rootf"), 0666, "s\n") == 0);
    REQUIRE(mkdir_mode(S("usticky"), 01777, USER_UID, USER_GID) == 0);
    REQUIRE(put(S("usticky/rootf"), 0644, "s\n") == 0);
    REQUIRE(mkdir_mode(S("sgiddir"), 02777, 0, OTHER_GRP) == 0);
    REQUIRE(put(S("kill1"), 06777, "k\n") == 0);
    REQUIRE(put(S("kill2"), 06777, "k\n") == 0);
    REQUIRE(put(S("kill3"), 02767, "k\n") == 0);
    REQUIRE(put(S("kill4"), 02767, "k\n") == 0 && chown(S("kill4"), 0, USER_GRP) == 0 && chmod(S("kill4"), 02767) == 0);
    REQUIRE(put(S("ufile"), 0644, "u\n") == 0 && chown(S("ufile"), USER_UID, USER_GID) == 0);
    REQUIRE(put(S("ufile42"), 0644, "u\n") == 0 && chown(S("ufile42"), USER_UID, OTHER_GRP) == 0);
    REQUIRE(put_prog(S("x_none"), 0644) == 0);
    REQUIRE(put_prog(S("x_ok"), 0755) == 0);
    REQUIRE(put_prog(S("x_user"), 0100) == 0 && chown(S("x_user"), USER_UID, USER_GID) == 0);
    REQUIRE(mkdir_mode(S("dir000"), 0, 0, 0) == 0);
    REQUIRE(put(S("rootsuid"), 04755, "s\n") == 0);
}

static void user_open_rules(void)
{
    char out[200];
    CHECK(fails(open(S("rootfile"), O_RDONLY), EACCES));
    CHECK(fails(open(S("rootfile"), O_WRONLY), EACCES));
    CHECK(fails(open(S("rootpub"), O_RDONLY | O_TRUNC), EACCES)); /* O_TRUNC needs write */
    int fd = open(S("rootpub"), O_RDONLY);
    CHECK(fd >= 0);
    close(fd);
    fd = open(S("rootww"), O_RDWR);
    CHECK(fd >= 0);
    close(fd);
    /* O_CREAT of an existing file needs no write permission on the directory. */
    fd = open(S("rootpub"), O_CREAT | O_RDONLY, 0644);
    CHECK(fd >= 0);
    close(fd);
    CHECK(fails(open(S("rootpub"), O_CREAT | O_EXCL | O_RDONLY, 0644), EEXIST));
    CHECK(fails(open(S("new"), O_CREAT | O_WRONLY, 0644), EACCES));
    /* Search permission on the directories of a path. */
    struct stat st;
    CHECK(stat(S("rootdir"), &st) == 0);
    CHECK(fails(stat(S("rootdir/f"), &st), EACCES));
    CHECK(fails(open(S("rootdir/f"), O_RDONLY), EACCES));
    CHECK(fails(open(S("rootdir/new"), O_CREAT | O_WRONLY, 0644), EACCES));
    CHECK(fails(chdir(S("rootdir")), EACCES));
    CHECK(fails(access(S("rootdir/f"), F_OK), EACCES));
    CHECK(fails(opendir(S("dir000")) ? 0 : -1, EACCES));
    /* exec. */
    CHECK(run_ids(S("x_none"), out, sizeof out) == EACCES);
    CHECK(run_ids(S("pubdir"), out, sizeof out) == EACCES);
    CHECK(run_ids(S("rootdir/f"), out, sizeof out) == EACCES);
    CHECK(run_ids(S("x_ok"), out, sizeof out) == 0 && strcmp(out, ids_line(1000, 1000, 1000, 1000, 1000, 1000, 0, 0, 0)) == 0);
    CHECK(run_ids(S("x_user"), out, sizeof out) == 0);
}

static void user_namespace_rules(void)
{
    struct stat st;
    /* A directory the user cannot write. */
    CHECK(fails(mkdir(S("newd"), 0755), EACCES));
    CHECK(fails(symlink("x", S("newl")), EACCES));
    CHECK(fails(link(S("rootww"), S("newh")), EACCES));
    CHECK(fails(rename(S("rootww"), S("pubdir/moved")), EACCES));
    CHECK(fails(rename(S("pubdir/rootf"), S("moved")), EACCES));
    CHECK(fails(unlink(S("rootpub")), EACCES));
    CHECK(fails(rmdir(S("rootdir")), EACCES));
    /* A writable directory: others' files can go (no sticky bit). */
    CHECK(unlink(S("pubdir/rootf")) == 0);
    CHECK(rmdir(S("pubdir/rootsub")) == 0);
    /* umask and the owner of new files. */
    umask(022);
    int fd = open(S("pubdir/u1"), O_CREAT | O_EXCL | O_WRONLY, 0666);
    CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_mode == (S_IFREG | 0644) && st.st_uid == USER_UID &&
          st.st_gid == USER_GID);
    close(fd);
    umask(027);
    CHECK(mkdir(S("pubdir/ud"), 0777) == 0 && stat(S("pubdir/ud"), &st) == 0 && st.st_mode == (S_IFDIR | 0750) &&
          st.st_uid == USER_UID);
    umask(0);
    /* A file created with mode 0 opens for writing once, then not again. */
    fd = open(S("pubdir/zero"), O_CREAT | O_EXCL | O_RDWR, 0);
    CHECK(fd >= 0 && write(fd, "z", 1) == 1);
    close(fd);
    CHECK(fails(open(S("pubdir/zero"), O_RDONLY), EACCES));
    CHECK(rename(S("pubdir/zero"), S("pubdir/zero2")) == 0);
    /* Sticky directories: only the file's owner (or the directory's) may remove or move it. */
    CHECK(fails(unlink(S("sticky/rootf")), EPERM));
    CHECK(fails(rename(S("sticky/rootf"), S("sticky/x")), EPERM));
    fd = open(S("sticky/rootf"), O_RDWR);
    CHECK(fd >= 0);
    close(fd);
    fd = open(S("sticky/mine"), O_CREAT | O_EXCL | O_WRONLY, 0644);
    CHECK(fd >= 0);
    close(fd);
    CHECK(rename(S("sticky/mine"), S("sticky/mine2")) == 0);
    CHECK(fails(rename(S("sticky/mine2"), S("sticky/rootf")), EPERM));
    CHECK(unlink(S("sticky/mine2")) == 0);
    fd = open(S("sticky/left"), O_CREAT | O_EXCL | O_WRONLY, 0644);
    CHECK(fd >= 0);
    close(fd);
    CHECK(unlink(S("usticky/rootf")) == 0); /* the directory's owner */
    /* A setgid directory: new files take its group, new directories its setgid bit too. */
    fd = open(S("sgiddir/f"), O_CREAT | O_EXCL | O_WRONLY, 02755);
    CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_gid == OTHER_GRP && (st.st_mode & 07777) == 0755);
    close(fd);
    CHECK(mkdir(S("sgiddir/d"), 0755) == 0 && stat(S("sgiddir/d"), &st) == 0 && st.st_gid == OTHER_GRP &&
          (st.st_mode & 07777) == 02755);
    /* Hard links (fs.protected_hardlinks = 1). */
    CHECK(fails(link(S("rootfile"), S("pubdir/h1")), EPERM));
    CHECK(fails(link(S("suidww"), S("pubdir/h2")), EPERM));
    CHECK(link(S("rootww"), S("pubdir/h3")) == 0);
    CHECK(link(S("ufile"), S("pubdir/h4")) == 0);
}

static void user_attr_rules(void)
{
    struct stat st;
    /* chmod and chown: the owner (chown: root only; chgrp: to one of the owner's groups). */
    CHECK(fails(chmod(S("rootfile"), 0644), EPERM));
    CHECK(fails(chown(S("rootfile"), USER_UID, -1), EPERM));
    CHECK(fails(chown(S("rootpub"), -1, USER_GRP), EPERM));
    CHECK(chmod(S("ufile"), 0600) == 0 && mode_of(S("ufile")) == 0600);
    CHECK(chmod(S("ufile"), 02755) == 0 && mode_of(S("ufile")) == 02755);
    CHECK(chown(S("ufile"), -1, USER_GRP) == 0 && stat(S("ufile"), &st) == 0 && st.st_gid == USER_GRP);
    CHECK(mode_of(S("ufile")) == 0755); /* chgrp cleared the setgid bit (group-execute set) */
    CHECK(fails(chown(S("ufile"), -1, OTHER_GRP), EPERM));
    CHECK(fails(chown(S("ufile"), 0, -1), EPERM));
    CHECK(chown(S("ufile"), USER_UID, -1) == 0);
    CHECK(chmod(S("ufile42"), 02755) == 0 && mode_of(S("ufile42")) == 0755); /* not our group */
    CHECK(chmod(S("ufile42"), 04755) == 0 && mode_of(S("ufile42")) == 04755);
    /* utimensat: explicit times need the owner, "now" the owner or write permission. */
    struct timespec t[2] = {{1000, 0}, {2000, 0}};
    struct timespec now2[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    CHECK(fails(utimensat(AT_FDCWD, S("rootpub"), NULL, 0), EACCES));
    CHECK(fails(utimensat(AT_FDCWD, S("rootpub"), t, 0), EPERM));
    CHECK(utimensat(AT_FDCWD, S("rootww"), NULL, 0) == 0);
    CHECK(utimensat(AT_FDCWD, S("rootww"), now2, 0) == 0);
    CHECK(fails(utimensat(AT_FDCWD, S("rootww"), t, 0), EPERM));
    CHECK(utimensat(AT_FDCWD, S("ufile"), t, 0) == 0 && stat(S("ufile"), &st) == 0 && st.st_mtime == 2000);
    /* truncate needs write permission; ftruncate a descriptor open for writing. */
    CHECK(fails(truncate(S("rootpub"), 0), EACCES));
    CHECK(truncate(S("rootww"), 1) == 0);
    int fd = open(S("rootpub"), O_RDONLY);
    CHECK(fails(ftruncate(fd, 0), EINVAL));
    close(fd);
    /* A write or truncate by a non-root user clears setuid, and setgid with group-execute. */
    fd = open(S("kill1"), O_WRONLY);
    CHECK(fd >= 0 && write(fd, "x", 1) == 1);
    close(fd);
    CHECK(mode_of(S("kill1")) == 0777);
    CHECK(truncate(S("kill2"), 0) == 0 && mode_of(S("kill2")) == 0777);
    fd = open(S("kill3"), O_WRONLY);
    CHECK(fd >= 0 && write(fd, "x", 1) == 1);
    close(fd);
    CHECK(mode_of(S("kill3")) == 0767);
    fd = open(S("kill4"), O_WRONLY); /* setgid without group-execute, and we are in the group */
    CHECK(fd >= 0 && write(fd, "x", 1) == 1);
    close(fd);
    CHECK(mode_of(S("kill4")) == 02767);
}

static void user_creds(void)
{
    gid_t groups[8];
    CHECK(getgroups(8, groups) == 1 && groups[0] == USER_GRP);
    gid_t g = 0;
    CHECK(fails(setgroups(1, &g), EPERM));
    CHECK(fails(setuid(0), EPERM));
    CHECK(fails(setgid(0), EPERM));
    CHECK(fails(setresuid(-1, 0, -1), EPERM));
    CHECK(setresgid(-1, USER_GID, -1) == 0);
    uint64_t prm, eff = capget_sets(&prm);
    CHECK(eff == 0 && prm == 0);
    CHECK(setfsuid(0) == USER_UID && setfsuid(-1) == USER_UID); /* refused: unchanged */
    /* Another user's descriptors (root's, in the parent) are out of reach. */
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d/fd", (int)getppid());
    CHECK(fails(open(path, O_RDONLY | O_DIRECTORY), EACCES));
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)getppid(), treefd);
    CHECK(fails(stat(path, &st), EACCES));
    /* Its own pipe is its own: reopened through /proc/self/fd. */
    int p[2];
    char c = 0;
    CHECK(pipe(p) == 0 && write(p[1], "p", 1) == 1);
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && read(fd, &c, 1) == 1 && c == 'p');
    CHECK(fstat(p[0], &st) == 0 && st.st_uid == USER_UID && st.st_gid == USER_GID);
    close(fd);
    close(p[0]);
    close(p[1]);
    CHECK(fails(mount("none", S("pubdir"), "tmpfs", 0, NULL), EPERM));
    CHECK(fails(umount2(scratch, 0), EPERM));
}

/* chown(2) with both ids -1 still clears set-id bits (chown_common), as a chmod would. */
static void user_chown_nothing(void)
{
    CHECK(put(S("pubdir/own_suid"), 06755, "s\n") == 0 && mode_of(S("pubdir/own_suid")) == 06755);
    CHECK(chown(S("pubdir/own_suid"), -1, -1) == 0 && mode_of(S("pubdir/own_suid")) == 0755);
    /* A setgid locking mark (no group-execute) of the owner's own group stays. */
    CHECK(put(S("pubdir/own_lock"), 02745, "l\n") == 0 && chown(S("pubdir/own_lock"), -1, -1) == 0 &&
          mode_of(S("pubdir/own_lock")) == 02745);
    int fd = open(S("pubdir/own_suid2"), O_CREAT | O_EXCL | O_RDWR, 0644);
    CHECK(fd >= 0 && fchmod(fd, 04644) == 0 && fchown(fd, -1, -1) == 0 && mode_of(S("pubdir/own_suid2")) == 0644);
    close(fd);
    /* Another's set-user-ID file: clearing the bit would be a chmod it may not make. */
    CHECK(fails(chown(S("rootsuid"), -1, -1), EPERM) && mode_of(S("rootsuid")) == 04755);
    /* Another's plain file: nothing to clear, nothing refused. */
    CHECK(chown(S("rootpub"), -1, -1) == 0);
}

/* Field `n` (proc(5)'s numbering) of a /proc/PID/stat line, or -1. */
static long long stat_field(const char *path, int n)
{
    char buf[1024];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0)
        return -1;
    buf[len] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p += 1;
    for (int field = 3; field <= n; field++) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p && field != 3)
            return -1;
        if (field == n)
            return v;
        p = end;
        if (field == 3) /* the state letter */
            p = strchr(p + 1, ' ');
        if (!p)
            return -1;
    }
    return -1;
}

/* Another user's process (root's, the parent) is closed to ptrace-style looks
 * (ptrace_may_access): its maps, its exe link, stat's addresses; the user's own are open. */
static void user_proc_inspection(void)
{
    char path[64], link[256];
    struct stat st;
    int ppid = (int)getppid();
    snprintf(path, sizeof path, "/proc/%d/maps", ppid);
    CHECK(stat(path, &st) == 0);
    CHECK(fails(open(path, O_RDONLY), EACCES));
    snprintf(path, sizeof path, "/proc/%d/task/%d/maps", ppid, ppid);
    CHECK(fails(open(path, O_RDONLY), EACCES));
    snprintf(path, sizeof path, "/proc/%d/exe", ppid);
    CHECK(lstat(path, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(fails(readlink(path, link, sizeof link), EACCES));
    CHECK(fails(stat(path, &st), EACCES));
    CHECK(fails(open(path, O_RDONLY), EACCES));
    /* stat is readable, with the addresses hidden: start_code and end_code 1, the stack 0. */
    snprintf(path, sizeof path, "/proc/%d/stat", ppid);
    CHECK(stat_field(path, 26) == 1 && stat_field(path, 27) == 1 && stat_field(path, 28) == 0);
    snprintf(path, sizeof path, "/proc/%d/status", ppid);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    close(fd);
    /* Its own process. */
    fd = open("/proc/self/maps", O_RDONLY);
    CHECK(fd >= 0 && read(fd, link, sizeof link) > 0);
    close(fd);
    CHECK(readlink("/proc/self/exe", link, sizeof link) > 0);
    CHECK(stat_field("/proc/self/stat", 26) > 1 && stat_field("/proc/self/stat", 28) > 0);
}

static void user_scratch(void)
{
    user_open_rules();
    user_namespace_rules();
    user_attr_rules();
    user_creds();
    user_chown_nothing();
    user_proc_inspection();
}

/* ---- read-only and noexec file systems (tmpfs mounts in the scratch directory) ---- */

/* As the user, on a read-only tmpfs: a change is EROFS before any permission is asked
 * (inode_permission's sb_permission, mnt_want_write first); what changes nothing is asked
 * as usual. */
static void user_readonly(void)
{
    CHECK(fails(open(S("ro/f"), O_WRONLY), EROFS));          /* not EACCES */
    CHECK(fails(open(S("ro/f"), O_RDONLY | O_TRUNC), EROFS));
    CHECK(fails(open(S("ro/f000"), O_RDWR), EROFS));
    CHECK(fails(open(S("ro/f000"), O_RDONLY), EACCES));      /* no write: the mode bits */
    int fd = open(S("ro/f"), O_RDONLY | O_CREAT, 0644);      /* it exists: nothing made */
    CHECK(fd >= 0);
    close(fd);
    CHECK(fails(open(S("ro/d/new"), O_CREAT | O_WRONLY, 0644), EROFS));
    CHECK(fails(mkdir(S("ro/d/new"), 0755), EROFS));
    CHECK(fails(mkdir(S("ro/f"), 0755), EEXIST));             /* EEXIST still first */
    CHECK(fails(unlink(S("ro/d/g")), EROFS));
    CHECK(fails(unlink(S("ro/d/nothing")), EROFS));
    CHECK(fails(rename(S("ro/d/g"), S("ro/d/h")), EROFS));
    CHECK(fails(truncate(S("ro/f"), 0), EROFS));
    CHECK(fails(access(S("ro/f"), W_OK), EROFS));
    CHECK(fails(access(S("ro/f000"), R_OK), EACCES));
    CHECK(fails(chmod(S("ro/f"), 0600), EROFS));              /* not EPERM */
    CHECK(fails(chown(S("ro/f"), -1, -1), EROFS));
    CHECK(fails(utimensat(AT_FDCWD, S("ro/f"), NULL, 0), EROFS)); /* not EACCES */
    /* noexec: access(X_OK) to a regular file is EACCES whatever its mode. */
    CHECK(fails(access(S("nx/x"), X_OK), EACCES));
    CHECK(access(S("nx/x"), R_OK) == 0);
    CHECK(access(S("nx"), X_OK) == 0);
}

/* Mount a tmpfs at `name` in the scratch directory with the files the checks use. */
static int mount_scratch_fs(const char *name)
{
    if (mkdir(S(name), 0755) != 0 || mount("tmpfs", S(name), "tmpfs", 0, NULL) != 0)
        return -1;
    return chmod(S(name), 0755);
}

static void special_mounts(void)
{
    /* Natively, in a private mount namespace (vk has one namespace: ENOSYS there). */
    if (unshare(CLONE_NEWNS) == 0)
        REQUIRE(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
    else
        REQUIRE(errno == ENOSYS || errno == EINVAL);
    REQUIRE(mount_scratch_fs("ro") == 0);
    REQUIRE(put(S("ro/f"), 0644, "f\n") == 0);
    REQUIRE(put(S("ro/f000"), 0, "f\n") == 0);
    REQUIRE(mkdir_mode(S("ro/d"), 0755, 0, 0) == 0 && put(S("ro/d/g"), 0644, "g\n") == 0);
    REQUIRE(mount("tmpfs", S("ro"), "tmpfs", MS_REMOUNT | MS_RDONLY, NULL) == 0);
    REQUIRE(mount_scratch_fs("nx") == 0);
    REQUIRE(put(S("nx/x"), 0755, "#!/bin/sh\n") == 0);
    REQUIRE(mount("tmpfs", S("nx"), "tmpfs", MS_REMOUNT | MS_NOEXEC, NULL) == 0);
    /* Root: the same answers where the mode bits would have let it through. */
    CHECK(fails(open(S("ro/f000"), O_WRONLY), EROFS));
    CHECK(fails(access(S("nx/x"), X_OK), EACCES));
    in_child("user: read-only and noexec mounts", become_user, user_readonly);
    CHECK(umount2(S("ro"), 0) == 0 && umount2(S("nx"), 0) == 0);
}

/* Real uid 1000, effective and saved uid 0. */
static void real_user(void)
{
    uint64_t prm, eff;
    CHECK(fails(access(S("rootfile"), R_OK), EACCES));
    CHECK(fails(faccessat(AT_FDCWD, S("rootfile"), R_OK, 0), EACCES));
    CHECK(faccessat(AT_FDCWD, S("rootfile"), R_OK | W_OK, AT_EACCESS) == 0);
    CHECK(fails(access(S("rootdir/f"), F_OK), EACCES)); /* the lookup with the real ids too */
    CHECK(faccessat(AT_FDCWD, S("rootdir/f"), F_OK, AT_EACCESS) == 0);
    int fd = open(S("rootfile"), O_RDONLY);
    CHECK(fd >= 0);
    close(fd);
    eff = capget_sets(&prm);
    CHECK(eff == root_prm && prm == root_prm);
    /* The effective uid leaves 0: the effective set empties, the permitted set stays. */
    CHECK(setresuid(-1, USER_UID, -1) == 0);
    eff = capget_sets(&prm);
    CHECK(eff == 0 && prm == root_prm);
    CHECK(fails(open(S("rootfile"), O_RDONLY), EACCES));
    CHECK(seteuid(0) == 0);
    eff = capget_sets(&prm);
    CHECK(eff == root_prm && prm == root_prm);
    /* setfsuid: the file-system uid alone, and the file-system capabilities with it. */
    CHECK(setfsuid(USER_UID) == 0);
    CHECK(fails(open(S("rootfile"), O_RDONLY), EACCES));
    CHECK(setfsuid(0) == USER_UID);
    fd = open(S("rootfile"), O_RDONLY);
    CHECK(fd >= 0);
    close(fd);
    /* All three uids leave 0: the permitted set empties for good. */
    CHECK(setresuid(USER_UID, USER_UID, USER_UID) == 0);
    eff = capget_sets(&prm);
    CHECK(eff == 0 && prm == 0);
    CHECK(fails(seteuid(0), EPERM));
}

static void root_scratch(void)
{
    char out[200];
    struct stat st;
    /* root passes read/write/search checks... */
    int fd = open(S("x_user"), O_RDWR);
    CHECK(fd >= 0);
    close(fd);
    CHECK(access(S("dir000"), R_OK | W_OK | X_OK) == 0);
    DIR *d = opendir(S("dir000"));
    CHECK(d != NULL);
    if (d)
        closedir(d);
    /* ...but executes only what has an execute bit. */
    CHECK(fails(access(S("x_none"), X_OK), EACCES));
    CHECK(access(S("x_user"), X_OK) == 0);
    CHECK(run_ids(S("x_none"), out, sizeof out) == EACCES);
    CHECK(run_ids(S("x_user"), out, sizeof out) == 0 && strcmp(out, ids_line(0, 0, 0, 0, 0, 0, 0, root_prm, root_prm)) == 0);
    /* chmod and chown of anyone's file; chown clears setuid and setgid (with group-execute). */
    CHECK(chmod(S("ufile42"), 0640) == 0 && mode_of(S("ufile42")) == 0640);
    CHECK(put(S("suid2"), 06755, "s\n") == 0 && mode_of(S("suid2")) == 06755);
    fd = open(S("suid2"), O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, "x", 1) == 1); /* root's write keeps the bits */
    close(fd);
    CHECK(mode_of(S("suid2")) == 06755);
    CHECK(chown(S("suid2"), USER_UID, USER_GID) == 0 && stat(S("suid2"), &st) == 0 && st.st_uid == USER_UID &&
          (st.st_mode & 07777) == 0755);
    CHECK(put(S("sgid2"), 02755, "s\n") == 0 && chown(S("sgid2"), 0, OTHER_GRP) == 0 && mode_of(S("sgid2")) == 0755);
    /* setgid without group-execute (a locking mark) survives root's chown. */
    CHECK(put(S("sgid3"), 02745, "s\n") == 0 && chown(S("sgid3"), 0, OTHER_GRP) == 0 && mode_of(S("sgid3")) == 02745);
    /* Both ids -1: the same, even for root. */
    CHECK(put(S("suid4"), 06755, "s\n") == 0 && chown(S("suid4"), -1, -1) == 0 && mode_of(S("suid4")) == 0755);
    CHECK(put(S("sgid4"), 02745, "s\n") == 0 && chown(S("sgid4"), -1, -1) == 0 && mode_of(S("sgid4")) == 02745);
    /* Sticky directories do not stop root. */
    CHECK(unlink(S("sticky/left")) == 0);
    CHECK(utimensat(AT_FDCWD, S("ufile"), NULL, 0) == 0);
    /* capget: root's effective set is its permitted set, with the file capabilities in it. */
    uint64_t prm, eff = capget_sets(&prm);
    CHECK(eff == prm && (eff & 0xf) == 0xf && (eff & (1ull << 21)) != 0);
    struct {
        uint32_t version;
        int pid;
    } hdr = {0, 0};
    /* An unknown version: EINVAL, and the preferred one written back (a NULL data pointer
     * makes it a probe that succeeds). */
    uint32_t data[6];
    CHECK(fails(syscall(SYS_capget, &hdr, data), EINVAL) && hdr.version == CAP_VERSION_3);
    hdr.version = 0;
    CHECK(syscall(SYS_capget, &hdr, NULL) == 0 && hdr.version == CAP_VERSION_3);
    CHECK(umask(022) == 0 && umask(0) == 022);
}

/* Remove a tree (as root). */
static void rm_rf(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd >= 0) {
        DIR *d = fdopendir(fd);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                rm_rf(fd, e->d_name);
        if (d)
            closedir(d);
        unlinkat(dirfd, name, AT_REMOVEDIR);
    } else {
        unlinkat(dirfd, name, 0);
    }
}

static int protected_hardlinks(void)
{
    int fd = open("/proc/sys/fs/protected_hardlinks", O_RDONLY);
    if (fd < 0)
        return 1; /* vk: always on */
    char c = 0;
    ssize_t n = read(fd, &c, 1);
    close(fd);
    return n == 1 && c == '1';
}

/* The capability bounding set (prctl PR_CAPBSET_READ/DROP, capabilities(7)): root drops
 * CAP_KILL for good; capset can then no longer make it inheritable; a user cannot drop. */
static int stay_root(void)
{
    return 0;
}

static int cap_inheritable(uint64_t inh)
{
    struct {
        uint32_t version;
        int pid;
    } hdr = {CAP_VERSION_3, 0};
    struct {
        uint32_t effective, permitted, inheritable;
    } d[2];
    memset(d, 0, sizeof d);
    if (syscall(SYS_capget, &hdr, d) != 0)
        return -1;
    d[0].inheritable = (uint32_t)inh;
    d[1].inheritable = (uint32_t)(inh >> 32);
    return (int)syscall(SYS_capset, &hdr, d);
}

static int bounding_has(int cap)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long bnd = 0;
    while (f && fgets(line, sizeof line, f))
        sscanf(line, "CapBnd: %llx", &bnd);
    if (f)
        fclose(f);
    return (int)(bnd >> cap & 1);
}

static void root_bounding_set(void)
{
    CHECK(prctl(PR_CAPBSET_READ, CAP_KILL, 0, 0, 0) == 1);
    CHECK(fails(prctl(PR_CAPBSET_READ, 4096, 0, 0, 0), EINVAL));
    CHECK(fails(prctl(PR_CAPBSET_DROP, -1, 0, 0, 0), EINVAL));
    CHECK(bounding_has(CAP_KILL));
    CHECK(cap_inheritable(1ull << CAP_KILL) == 0);
    CHECK(cap_inheritable(0) == 0);
    CHECK(prctl(PR_CAPBSET_DROP, CAP_KILL, 0, 0, 0) == 0);
    CHECK(prctl(PR_CAPBSET_READ, CAP_KILL, 0, 0, 0) == 0);
    CHECK(prctl(PR_CAPBSET_READ, CAP_CHOWN, 0, 0, 0) == 1);
    CHECK(!bounding_has(CAP_KILL));
    CHECK(fails(cap_inheritable(1ull << CAP_KILL), EPERM));
}

static void user_bounding_set(void)
{
    CHECK(prctl(PR_CAPBSET_READ, CAP_KILL, 0, 0, 0) == 1);
    CHECK(fails(prctl(PR_CAPBSET_DROP, CAP_KILL, 0, 0, 0), EPERM));
}

int main(int argc, char **argv)
{
    vktest_reset_signals();
    umask(0);
    if (geteuid() != 0) {
        vktest_print("t_perm: must run as root\n");
        CHECK(geteuid() == 0);
        vktest_done();
    }
    REQUIRE(protected_hardlinks());
    /* The staged tree lies beside this program. */
    char self[256];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(n > 0);
    self[n > 0 ? n : 0] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
        strcpy(slash + 1, "perm");
    treefd = open(self, O_PATH | O_DIRECTORY);
    REQUIRE(treefd >= 0);
    struct stat st;
    REQUIRE(fstatat(treefd, "secret", &st, 0) == 0 && st.st_uid == 0 && (st.st_mode & 0777) == 0600);
    uint64_t eff = capget_sets(&root_prm);
    REQUIRE(eff == root_prm);

    const char *base = argc > 1 ? argv[1] : "/tmp";
    snprintf(scratch, sizeof scratch, "%s/t_perm.XXXXXX", base);
    REQUIRE(mkdtemp(scratch) != NULL);
    make_scratch();

    root_tree();
    in_child("user: staged tree", become_user, user_tree);
    in_child("user: scratch", become_user, user_scratch);
    in_child("real user, effective root", become_real_user, real_user);
    in_child("root: bounding set", stay_root, root_bounding_set);
    in_child("user: bounding set", become_user, user_bounding_set);
    root_scratch();
    special_mounts();

    rm_rf(AT_FDCWD, scratch);
    CHECK(fails(access(scratch, F_OK), ENOENT));
    vktest_done();
}
