/*
 * t_exec — program start-up and execve(2).
 *
 * Covers: the auxiliary vector (AT_PAGESZ, AT_PHDR/AT_PHENT/AT_PHNUM/AT_ENTRY against the
 * program's own ELF headers through __ehdr_start, AT_RANDOM, AT_EXECFN, AT_UID/EUID/GID/EGID,
 * AT_SECURE, AT_HWCAP, AT_CLKTCK, AT_PLATFORM, AT_BASE), argv/envp passing (empty strings, a
 * 100 KiB string, 1000 arguments, an exact environment), re-exec through /proc/self/exe and
 * through the real path, what execve keeps and resets (pid, cwd, umask, descriptors vs
 * O_CLOEXEC, shared file offset, caught signals reset to SIG_DFL, ignored stay ignored, the
 * signal mask and pending signals are kept), `#!` scripts (argv layout, optional argument kept
 * as one string, whitespace, a script as interpreter of a script, missing interpreter), and the
 * failures ENOENT, EACCES, ENOTDIR, ENOEXEC, E2BIG, EFAULT leaving the caller intact.
 *
 * Linux-specific: the `#!` argv layout (interpreter, optional argument as ONE string, the path
 * given to execve, then argv[1..]; the script's own argv[0] is dropped), AT_EXECFN being the
 * path given to execve even for a script, MAX_ARG_STRLEN (32 pages) giving E2BIG.
 *
 * The program re-executes itself; the environment variable VKT_MODE selects a child mode.
 */
#include "vktest.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

extern char **environ;
extern const ElfW(Ehdr) __ehdr_start __attribute__((weak, visibility("hidden")));

#define FIELD_SEP "\x1f"

static char self_path[PATH_MAX];
static char tmpdir[64];
static volatile int survives_failed_exec = 1234;

/* ---------------------------------------------------------------- child modes */

/* VKT_ARGV holds the expected argv joined with \x1f; VKT_EXECFN the expected AT_EXECFN. */
static void child_argv_check(int argc, char **argv)
{
    char *want = strdup(getenv("VKT_ARGV"));
    int i = 0;
    for (char *save = NULL, *field = strtok_r(want, FIELD_SEP, &save); field;
         field = strtok_r(NULL, FIELD_SEP, &save), i++) {
        if (strcmp(field, "(empty)") == 0)
            field = "";
        CHECKF(i < argc && strcmp(argv[i], field) == 0, "argv[%d]: got \"%s\", want \"%s\"", i,
               i < argc ? argv[i] : "(none)", field);
    }
    CHECKF(argc == i, "argc %d, want %d", argc, i);
    CHECK(argv[argc] == NULL);
    const char *execfn = getenv("VKT_EXECFN");
    if (execfn) {
        const char *got = (const char *)getauxval(AT_EXECFN);
        CHECKF(got && strcmp(got, execfn) == 0, "AT_EXECFN \"%s\", want \"%s\"", got ? got : "",
               execfn);
    }
    vktest_child_done();
}

/* Exactly the environment the parent passed, and a 100 KiB argument plus 1000 small ones. */
static void child_big_argv(int argc, char **argv)
{
    int n_env = 0;
    for (char **e = environ; *e; e++)
        n_env++;
    CHECKF(n_env == 4, "%d environment strings, want 4", n_env);
    CHECK(strcmp(getenv("VKT_B") ? getenv("VKT_B") : "", "two words") == 0);
    CHECK(getenv("VKT_EMPTY") && getenv("VKT_EMPTY")[0] == '\0');
    CHECK(getenv("PATH") == NULL);
    CHECKF(argc == 1003, "argc %d", argc);
    if (argc != 1003)
        vktest_child_done();
    CHECK(strcmp(argv[0], "custom-argv0") == 0);
    CHECK(argv[1][0] == '\0');
    size_t big_len = strlen(argv[2]);
    CHECKF(big_len == 100 * 1024, "big argument is %zu bytes", big_len);
    int big_ok = 1;
    for (size_t k = 0; k < big_len; k++)
        big_ok &= argv[2][k] == (char)('a' + k % 26);
    CHECK(big_ok);
    int small_ok = 1;
    for (int k = 0; k < 1000; k++) {
        char want[16];
        snprintf(want, sizeof want, "arg%d", k);
        small_ok &= strcmp(argv[3 + k], want) == 0;
    }
    CHECK(small_ok);
    CHECK(argv[argc] == NULL);
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    CHECK(execfn && strcmp(execfn, "/proc/self/exe") == 0);
    vktest_child_done();
}

/* argv: self, pid, cloexec fd, kept fd, cwd. See test_exec_keeps_state(). */
static void child_exec_state(int argc, char **argv)
{
    CHECK(argc == 5);
    if (argc != 5)
        vktest_child_done();
    CHECKF(getpid() == (pid_t)atoi(argv[1]), "pid %d, want %s", (int)getpid(), argv[1]);
    int cloexec_fd = atoi(argv[2]);
    int kept_fd = atoi(argv[3]);
    CHECK(fcntl(cloexec_fd, F_GETFD) == -1 && errno == EBADF);
    CHECK(fcntl(kept_fd, F_GETFD) == 0);
    CHECK(lseek(kept_fd, 0, SEEK_CUR) == 5);
    char buf[8] = {0};
    CHECK(read(kept_fd, buf, sizeof buf) == 3 && memcmp(buf, "678", 3) == 0);
    char cwd[PATH_MAX];
    CHECK(getcwd(cwd, sizeof cwd) && strcmp(cwd, argv[4]) == 0);
    mode_t old_mask = umask(0);
    CHECKF(old_mask == 027, "umask %o", (unsigned)old_mask);

    struct sigaction sa;
    CHECK(sigaction(SIGUSR1, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL); /* caught → default */
    CHECK(sigaction(SIGUSR2, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN); /* ignored stays */
    sigset_t mask, pending;
    CHECK(sigprocmask(SIG_BLOCK, NULL, &mask) == 0);
    CHECK(sigismember(&mask, SIGINT) == 1);
    CHECK(sigismember(&mask, SIGUSR1) == 0);
    CHECK(sigpending(&pending) == 0 && sigismember(&pending, SIGINT) == 1);

    CHECK(getauxval(AT_SECURE) == 0);
    CHECK(getauxval(AT_UID) == getuid());
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    CHECK(execfn && strcmp(execfn, self_path) == 0);
    vktest_child_done();
}

/* ---------------------------------------------------------------- helpers */

/* fork, execve in the child, return the wait status; an execve failure exits 200 + errno. */
static int run_exec(const char *path, char *const argv[], char *const envp[])
{
    pid_t pid = fork();
    if (pid == 0) {
        execve(path, argv, envp);
        _exit(200 + (errno < 50 ? errno : 50));
    }
    int status = -1;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return status;
}

static int exited_ok(int status)
{
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    REQUIRE(fchmod(fd, mode) == 0);
    close(fd);
}

/* Build an environment selecting argv-check mode. */
static void argv_check_env(char *envp[4], char *argv_var, size_t argv_size, char *fn_var,
                           size_t fn_size, const char *const want[], const char *execfn)
{
    snprintf(argv_var, argv_size, "VKT_ARGV=");
    for (int i = 0; want[i]; i++) {
        if (i)
            strncat(argv_var, FIELD_SEP, argv_size - strlen(argv_var) - 1);
        strncat(argv_var, want[i][0] ? want[i] : "(empty)", argv_size - strlen(argv_var) - 1);
    }
    snprintf(fn_var, fn_size, "VKT_EXECFN=%s", execfn);
    envp[0] = "VKT_MODE=argv-check";
    envp[1] = argv_var;
    envp[2] = fn_var;
    envp[3] = NULL;
}

/* ---------------------------------------------------------------- tests */

static void test_auxv(void)
{
    CHECK(getauxval(AT_PAGESZ) == 4096);
    CHECK(sysconf(_SC_PAGESIZE) == 4096);

    REQUIRE(&__ehdr_start != NULL);
    const ElfW(Ehdr) *ehdr = &__ehdr_start;
    CHECK(memcmp(ehdr->e_ident, ELFMAG, SELFMAG) == 0);
    const ElfW(Phdr) *phdr = (const ElfW(Phdr) *)((const char *)ehdr + ehdr->e_phoff);
    CHECKF(getauxval(AT_PHDR) == (unsigned long)phdr, "AT_PHDR %#lx, headers at %p",
           getauxval(AT_PHDR), (const void *)phdr);
    CHECK(getauxval(AT_PHNUM) == ehdr->e_phnum);
    CHECK(getauxval(AT_PHENT) == sizeof(ElfW(Phdr)));

    /* Load bias: where the first PT_LOAD (file offset 0, which holds the ELF header) landed. */
    uintptr_t bias = 0;
    int have_load = 0, main_in_load = 0;
    uintptr_t main_addr = (uintptr_t)&test_auxv;
    for (int i = 0; i < ehdr->e_phnum; i++) {
        if (phdr[i].p_type != PT_LOAD)
            continue;
        if (!have_load) {
            bias = (uintptr_t)ehdr - (phdr[i].p_vaddr - phdr[i].p_offset);
            have_load = 1;
        }
        if (main_addr >= bias + phdr[i].p_vaddr &&
            main_addr < bias + phdr[i].p_vaddr + phdr[i].p_memsz)
            main_in_load = (phdr[i].p_flags & PF_X) != 0;
    }
    CHECK(have_load);
    CHECK(main_in_load); /* our own code lies in an executable PT_LOAD */
    CHECKF(getauxval(AT_ENTRY) == bias + ehdr->e_entry, "AT_ENTRY %#lx, want %#lx",
           getauxval(AT_ENTRY), (unsigned long)(bias + ehdr->e_entry));
    CHECK(getauxval(AT_BASE) == 0); /* static: no program interpreter */

    const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
    REQUIRE(rnd != NULL);
    if (rnd) {
        int nonzero = 0;
        for (int i = 0; i < 16; i++)
            nonzero |= rnd[i];
        CHECK(nonzero != 0);
    }

    const char *execfn = (const char *)getauxval(AT_EXECFN);
    CHECK(execfn != NULL && execfn[0] != '\0');
    CHECK(getauxval(AT_UID) == getuid());
    CHECK(getauxval(AT_EUID) == geteuid());
    CHECK(getauxval(AT_GID) == getgid());
    CHECK(getauxval(AT_EGID) == getegid());
    CHECK(getauxval(AT_SECURE) == 0);
    CHECK(getauxval(AT_HWCAP) != 0);
    CHECK(getauxval(AT_CLKTCK) == 100);
    CHECK(sysconf(_SC_CLK_TCK) == 100);
    const char *platform = (const char *)getauxval(AT_PLATFORM);
    CHECK(platform != NULL && strcmp(platform, "x86_64") == 0);
    errno = 0;
    CHECK(getauxval(12345) == 0 && errno == ENOENT); /* musl reports an absent entry */
}

static void test_reexec_proc_self_exe(void)
{
    static char big[100 * 1024 + 1];
    for (size_t k = 0; k < sizeof big - 1; k++)
        big[k] = (char)('a' + k % 26);
    static char small[1000][16];
    static char *argv[1004];
    argv[0] = "custom-argv0";
    argv[1] = "";
    argv[2] = big;
    for (int k = 0; k < 1000; k++) {
        snprintf(small[k], sizeof small[k], "arg%d", k);
        argv[3 + k] = small[k];
    }
    argv[1003] = NULL;
    char *envp[] = {"VKT_MODE=big-argv", "VKT_A=1", "VKT_B=two words", "VKT_EMPTY=", NULL};
    CHECK(exited_ok(run_exec("/proc/self/exe", argv, envp)));
}

static void test_reexec_real_path(void)
{
    const char *want[] = {"by-path", "x", "", "y z", NULL};
    char argv_var[512], fn_var[PATH_MAX + 16];
    char *envp[4];
    argv_check_env(envp, argv_var, sizeof argv_var, fn_var, sizeof fn_var, want, self_path);
    char *argv[] = {"by-path", "x", "", "y z", NULL};
    CHECK(exited_ok(run_exec(self_path, argv, envp)));
}

/* A handler that must be reset to SIG_DFL by execve. */
static void noop_handler(int sig)
{
    (void)sig;
}

static void test_exec_keeps_state(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        char file[128];
        snprintf(file, sizeof file, "%s/state", tmpdir);
        int kept = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
        int cloexec = open(file, O_RDONLY | O_CLOEXEC);
        if (kept < 0 || cloexec < 0 || write(kept, "12345678", 8) != 8 ||
            lseek(kept, 5, SEEK_SET) != 5 || chdir(tmpdir) != 0)
            _exit(90);
        umask(027);
        struct sigaction sa = {.sa_handler = SIG_IGN};
        sigaction(SIGUSR2, &sa, NULL);
        sa.sa_handler = noop_handler;
        sigaction(SIGUSR1, &sa, NULL);
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        raise(SIGINT); /* stays pending across execve */
        char pid_s[16], cloexec_s[16], kept_s[16];
        snprintf(pid_s, sizeof pid_s, "%d", (int)getpid());
        snprintf(cloexec_s, sizeof cloexec_s, "%d", cloexec);
        snprintf(kept_s, sizeof kept_s, "%d", kept);
        char *argv[] = {"state", pid_s, cloexec_s, kept_s, tmpdir, NULL};
        char *envp[] = {"VKT_MODE=exec-state", NULL};
        execve(self_path, argv, envp);
        _exit(91);
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECKF(exited_ok(status), "status %#x", status);
}

static void test_exec_resets_caught_signal(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa = {.sa_handler = noop_handler};
        sigaction(SIGUSR1, &sa, NULL);
        sa.sa_handler = SIG_IGN;
        sigaction(SIGUSR2, &sa, NULL);
        /* In the new image SIGUSR1 must be SIG_DFL: it kills; SIGUSR2 stays ignored. */
        char *argv[] = {"sig", NULL};
        char *envp[] = {"VKT_MODE=raise-usr2-usr1", NULL};
        execve("/proc/self/exe", argv, envp);
        _exit(91);
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR1, "status %#x", status);
}

static void test_scripts(void)
{
    char script[128], nested[128], spaced[128], noarg[128], text[PATH_MAX + 64];
    char argv_var[2048], fn_var[PATH_MAX + 16];
    char *envp[4];

    /* "#!interp one two": the argument is kept as ONE string "one two". */
    snprintf(script, sizeof script, "%s/script", tmpdir);
    snprintf(text, sizeof text, "#!%s one two\nnot reached\n", self_path);
    write_file(script, text, 0755);
    {
        const char *want[] = {self_path, "one two", script, "a1", "", "a 3", NULL};
        argv_check_env(envp, argv_var, sizeof argv_var, fn_var, sizeof fn_var, want, script);
        char *argv[] = {"dropped-argv0", "a1", "", "a 3", NULL};
        CHECK(exited_ok(run_exec(script, argv, envp)));
    }

    /* No argument; spaces/tabs after #! and trailing whitespace are skipped. */
    snprintf(noarg, sizeof noarg, "%s/noarg", tmpdir);
    snprintf(text, sizeof text, "#! \t%s \t \n", self_path);
    write_file(noarg, text, 0755);
    {
        const char *want[] = {self_path, noarg, "b1", NULL};
        argv_check_env(envp, argv_var, sizeof argv_var, fn_var, sizeof fn_var, want, noarg);
        char *argv[] = {"dropped", "b1", NULL};
        CHECK(exited_ok(run_exec(noarg, argv, envp)));
    }

    /* A script run by a relative path: the path is passed on exactly as given. */
    {
        const char *want[] = {self_path, "one two", "./script", NULL};
        argv_check_env(envp, argv_var, sizeof argv_var, fn_var, sizeof fn_var, want,
                       "./script");
        char *argv[] = {"dropped", NULL};
        char old_cwd[PATH_MAX];
        REQUIRE(getcwd(old_cwd, sizeof old_cwd) != NULL);
        REQUIRE(chdir(tmpdir) == 0);
        CHECK(exited_ok(run_exec("./script", argv, envp)));
        REQUIRE(chdir(old_cwd) == 0);
    }

    /* A script whose interpreter is another script (Linux allows a few levels). */
    snprintf(nested, sizeof nested, "%s/nested", tmpdir);
    snprintf(text, sizeof text, "#!%s\n", script);
    write_file(nested, text, 0755);
    {
        const char *want[] = {self_path, "one two", script, nested, "c1", NULL};
        argv_check_env(envp, argv_var, sizeof argv_var, fn_var, sizeof fn_var, want, nested);
        char *argv[] = {"dropped", "c1", NULL};
        CHECK(exited_ok(run_exec(nested, argv, envp)));
    }

    /* Missing interpreter: execve itself fails with ENOENT. */
    snprintf(spaced, sizeof spaced, "%s/badinterp", tmpdir);
    write_file(spaced, "#!/nonexistent/interpreter\n", 0755);
    {
        char *argv[] = {"x", NULL};
        char *envp_none[] = {NULL};
        errno = 0;
        CHECK(execve(spaced, argv, envp_none) == -1 && errno == ENOENT);
    }
    /* A script without execute permission: EACCES. */
    write_file(spaced, text, 0644);
    {
        char *argv[] = {"x", NULL};
        char *envp_none[] = {NULL};
        errno = 0;
        CHECK(execve(spaced, argv, envp_none) == -1 && errno == EACCES);
    }
}

static void test_exec_failures(void)
{
    char path[160];
    char *argv[] = {"never", NULL};
    char *envp[] = {NULL};
    int keep = open("/dev/null", O_RDONLY);
    REQUIRE(keep >= 0);

    snprintf(path, sizeof path, "%s/does-not-exist", tmpdir);
    CHECK(execve(path, argv, envp) == -1 && errno == ENOENT);

    snprintf(path, sizeof path, "%s/garbage", tmpdir);
    write_file(path, "this is neither ELF nor a script\n", 0755);
    CHECK(execve(path, argv, envp) == -1 && errno == ENOEXEC);

    snprintf(path, sizeof path, "%s/empty", tmpdir);
    write_file(path, "", 0755);
    CHECK(execve(path, argv, envp) == -1 && errno == ENOEXEC);

    snprintf(path, sizeof path, "%s/garbage/sub", tmpdir);
    CHECK(execve(path, argv, envp) == -1 && errno == ENOTDIR);

    /* No execute bit at all: EACCES even for root. */
    snprintf(path, sizeof path, "%s/noexec", tmpdir);
    write_file(path, "\177ELF", 0644);
    CHECK(execve(path, argv, envp) == -1 && errno == EACCES);

    /* A directory: EACCES. */
    CHECK(execve(tmpdir, argv, envp) == -1 && errno == EACCES);

    /* A single argument longer than MAX_ARG_STRLEN (32 pages = 128 KiB): E2BIG. */
    static char huge[200 * 1024];
    memset(huge, 'h', sizeof huge - 1);
    char *big_argv[] = {"big", huge, NULL};
    CHECK(execve(self_path, big_argv, envp) == -1 && errno == E2BIG);

    /* Bad pointers. */
    CHECK(execve(BAD_PTR(8), argv, envp) == -1 && errno == EFAULT);
    CHECK(execve(self_path, BAD_PTR(8), envp) == -1 && errno == EFAULT);
    char *bad_argv[] = {"x", BAD_PTR(8), NULL};
    CHECK(execve(self_path, bad_argv, envp) == -1 && errno == EFAULT);

    /* The process is intact after all these failures. */
    CHECK(survives_failed_exec == 1234);
    CHECK(fcntl(keep, F_GETFD) == 0);
    char c;
    CHECK(read(keep, &c, 1) == 0);
    close(keep);
}

static void cleanup(void)
{
    const char *names[] = {"state", "script", "noarg", "nested", "badinterp", "garbage",
                           "empty", "noexec"};
    char path[160];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    CHECK(rmdir(tmpdir) == 0);
}

int main(int argc, char **argv)
{
    ssize_t len = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (len > 0)
        self_path[len] = '\0';

    const char *mode = getenv("VKT_MODE");
    if (mode) {
        if (strcmp(mode, "argv-check") == 0)
            child_argv_check(argc, argv);
        if (strcmp(mode, "big-argv") == 0)
            child_big_argv(argc, argv);
        if (strcmp(mode, "exec-state") == 0)
            child_exec_state(argc, argv);
        if (strcmp(mode, "raise-usr2-usr1") == 0) {
            raise(SIGUSR2); /* ignored */
            raise(SIGUSR1); /* default action: terminate */
            _exit(92);
        }
        vktest_print("t_exec: unknown VKT_MODE %s\n", mode);
        _exit(99);
    }

    vktest_reset_signals();
    CHECK(len > 0 && self_path[0] == '/');
    strcpy(tmpdir, "/tmp/vkt.XXXXXX");
    REQUIRE(mkdtemp(tmpdir) != NULL);

    test_auxv();
    test_reexec_proc_self_exe();
    test_reexec_real_path();
    test_exec_keeps_state();
    test_exec_resets_caught_signal();
    test_scripts();
    test_exec_failures();
    cleanup();
    vktest_done();
}
