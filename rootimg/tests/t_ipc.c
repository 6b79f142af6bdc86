/*
 * t_ipc — System V IPC: shared memory, semaphores, message queues (svipc(7)).
 *
 * Covers: shmget (IPC_PRIVATE, keys, IPC_CREAT|IPC_EXCL's EEXIST, ENOENT, a size larger than the
 * segment's EINVAL, size 0), shmat (shared with a forked child, which sees and changes the same
 * bytes; SHM_RDONLY faults on a store; SHM_RND; a misaligned address's EINVAL; /proc/self/maps'
 * "/SYSV" name), shmctl (IPC_STAT's size, attach count, creator pid and mode; IPC_SET;
 * IPC_RMID of an attached segment: SHM_DEST and key 0 until the last detach, then EINVAL;
 * IPC_INFO, SHM_INFO, SHM_STAT), shmdt (EINVAL when nothing is attached there); permissions
 * for another user (EACCES, EPERM). semget/semctl (SETVAL, GETVAL, SETALL, GETALL, GETPID,
 * GETNCNT, IPC_STAT, ERANGE, IPC_RMID waking a waiter with EIDRM), semop (all or nothing,
 * IPC_NOWAIT's EAGAIN, EFBIG, E2BIG, waiting for an increase and for zero, SEM_UNDO undone at
 * exit), semtimedop's timeout (EAGAIN). msgget/msgsnd/msgrcv/msgctl (types: first, exact,
 * lowest up to |t|, MSG_EXCEPT; E2BIG and MSG_NOERROR; ENOMSG; a receiver waiting for a sender;
 * a full queue's EAGAIN after IPC_SET lowers msg_qbytes; IPC_STAT's counts and pids; EIDRM for a
 * waiter when the queue goes; EINVAL for type 0). /proc/sys/kernel/{shmmni,msgmax,msgmnb,msgmni,sem}
 * agree with the IPC_INFO answers.
 */
#include "vktest.h"

#include <signal.h>
#include <stdint.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SHM_STAT_ANY
#define SHM_STAT_ANY 15
#endif

union semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait (up to 5 s) until process `pid` sleeps (state S in /proc/PID/stat): a child that
 * blocks at once in the call under test is then blocked in it. */
static int wait_sleeping(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    for (int i = 0; i < 5000; i++) {
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            ssize_t n = read(fd, buf, sizeof buf - 1);
            close(fd);
            buf[n > 0 ? n : 0] = 0;
            const char *p = strrchr(buf, ')');
            if (p && p[1] == ' ' && p[2] == 'S')
                return 1;
        }
        sleep_ms(1);
    }
    return 0;
}

/* A child's exit status: 0 when it passed. */
static int child_status(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

static key_t key_of(int n)
{
    return (key_t)(0x564b0000 + ((getpid() & 0xfff) << 4) + n);
}

static void test_shm(void)
{
    int id = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    REQUIRE(id >= 0);
    char *p = shmat(id, NULL, 0);
    REQUIRE(p != (void *)-1);
    strcpy(p, "parent");
    strcpy(p + 4096, "page two");
    pid_t pid = fork();
    if (pid == 0) {
        vktest_passed = vktest_failed = 0;
        CHECK(strcmp(p, "parent") == 0);
        char *q = shmat(id, NULL, SHM_RDONLY);
        CHECK(q != (void *)-1 && q != p && strcmp(q + 4096, "page two") == 0);
        strcpy(p, "child");
        CHECK(strcmp(q, "child") == 0);
        struct shmid_ds ds;
        CHECK(shmctl(id, IPC_STAT, &ds) == 0 && ds.shm_nattch == 3); /* the parent's, ours, q */
        vktest_child_done();
    }
    CHECK(child_status(pid) == 0);
    CHECK(strcmp(p, "child") == 0);

    struct shmid_ds ds;
    CHECK(shmctl(id, IPC_STAT, &ds) == 0);
    CHECKF(ds.shm_segsz == 8192 && ds.shm_nattch == 1 && ds.shm_cpid == getpid() && (ds.shm_perm.mode & 0777) == 0600,
           "segsz %zu nattch %lu cpid %d mode %o", (size_t)ds.shm_segsz, (unsigned long)ds.shm_nattch, ds.shm_cpid,
           ds.shm_perm.mode);
    CHECK(ds.shm_perm.uid == getuid() && ds.shm_perm.cuid == geteuid() && ds.shm_perm.__key == IPC_PRIVATE);
    CHECK(ds.shm_atime != 0 && ds.shm_lpid == pid);

    /* /proc/self/maps names the attachment /SYSV<key> (deleted). */
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int seen = 0;
    while (f && fgets(line, sizeof line, f))
        if (strtoul(line, NULL, 16) == (unsigned long)p && strstr(line, "/SYSV00000000") && strstr(line, "rw-s"))
            seen = 1;
    if (f)
        fclose(f);
    CHECK(seen);

    /* Read-only attachment: a store faults. */
    pid = fork();
    if (pid == 0) {
        vktest_passed = vktest_failed = 0;
        volatile char *q = shmat(id, NULL, SHM_RDONLY);
        if (q == (void *)-1)
            _exit(2);
        q[0] = 'x';
        _exit(3);
    }
    CHECK(child_status(pid) == 1000 + SIGSEGV);

    /* Addresses: misaligned is EINVAL, SHM_RND rounds down. */
    CHECK(shmat(id, p + 100, 0) == (void *)-1 && errno == EINVAL);
    char *hint = p + 1024 * 1024 * 64;
    char *r = shmat(id, hint + 100, SHM_RND);
    CHECK(r == hint);
    CHECK(r != (void *)-1 && strcmp(r, "child") == 0);
    /* Overlapping an existing mapping without SHM_REMAP: EINVAL; with it the mapping is replaced. */
    CHECK(shmat(id, r, 0) == (void *)-1 && errno == EINVAL);
    CHECK(shmat(id, r, SHM_REMAP) == r);
    CHECK(shmdt(r) == 0);
    CHECK(shmdt(r) == -1 && errno == EINVAL);
    CHECK(shmdt(p + 4096) == -1 && errno == EINVAL);

    /* IPC_SET changes the mode. */
    ds.shm_perm.mode = 0640;
    CHECK(shmctl(id, IPC_SET, &ds) == 0);
    CHECK(shmctl(id, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & 0777) == 0640);

    /* Info. */
    struct shminfo info;
    CHECK(shmctl(0, IPC_INFO, (struct shmid_ds *)&info) >= 0 && info.shmmin == 1 && info.shmmni > 0);
    struct shm_info usage;
    int maxidx = shmctl(0, SHM_INFO, (struct shmid_ds *)&usage);
    CHECK(maxidx >= 0 && usage.used_ids >= 1 && usage.shm_tot >= 2);
    int found = 0;
    for (int i = 0; i <= maxidx; i++) {
        struct shmid_ds s2;
        if (shmctl(i, SHM_STAT, &s2) == id)
            found = 1;
    }
    CHECK(found);
    /* Only the index bits of the argument count: the object's own id names it too. */
    struct shmid_ds s3;
    CHECK(shmctl(id, SHM_STAT, &s3) == id && shmctl(id, SHM_STAT_ANY, &s3) == id);

    /* IPC_RMID while attached: marked, key gone, still there until the last detach. */
    CHECK(shmctl(id, IPC_RMID, NULL) == 0);
    CHECK(shmctl(id, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & SHM_DEST) && ds.shm_perm.__key == 0);
    CHECK(strcmp(p, "child") == 0);
    CHECK(shmdt(p) == 0);
    CHECK(shmctl(id, IPC_STAT, &ds) == -1 && errno == EINVAL);

    /* Keys. */
    key_t k = key_of(1);
    int a = shmget(k, 4096, IPC_CREAT | IPC_EXCL | 0600);
    REQUIRE(a >= 0);
    CHECK(shmget(k, 4096, IPC_CREAT | IPC_EXCL | 0600) == -1 && errno == EEXIST);
    CHECK(shmget(k, 100, 0) == a);
    CHECK(shmget(k, 8192, 0) == -1 && errno == EINVAL);
    CHECK(shmget(key_of(2), 4096, 0) == -1 && errno == ENOENT);
    CHECK(shmget(IPC_PRIVATE, 0, 0600) == -1 && errno == EINVAL);
    CHECK(shmat(-1, NULL, 0) == (void *)-1 && errno == EINVAL);

    /* Another user: no access, no removal. */
    pid = fork();
    if (pid == 0) {
        vktest_passed = vktest_failed = 0;
        CHECK(setgid(65534) == 0 && setuid(65534) == 0);
        CHECK(shmget(k, 4096, 0) == a); /* asks for no access */
        CHECK(shmget(k, 4096, SHM_R) == -1 && errno == EACCES);
        CHECK(shmat(a, NULL, 0) == (void *)-1 && errno == EACCES);
        CHECK(shmctl(a, IPC_RMID, NULL) == -1 && errno == EPERM);
        struct shmid_ds s3;
        CHECK(shmctl(a, IPC_STAT, &s3) == -1 && errno == EACCES);
        vktest_child_done();
    }
    CHECK(child_status(pid) == 0);
    CHECK(shmctl(a, IPC_RMID, NULL) == 0);
    CHECK(shmget(k, 4096, 0) == -1 && errno == ENOENT);
    CHECK(shmctl(a, IPC_STAT, &ds) == -1 && errno == EINVAL);
}

static int semval(int id, int n)
{
    return semctl(id, n, GETVAL);
}

static void test_sem(void)
{
    int id = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
    REQUIRE(id >= 0);
    CHECK(semval(id, 0) == 0 && semval(id, 1) == 0);
    CHECK(semctl(id, 0, SETVAL, (union semun){.val = 1}) == 0 && semval(id, 0) == 1);
    CHECK(semctl(id, 0, GETPID) == getpid());
    CHECK(semctl(id, 0, SETVAL, (union semun){.val = 40000}) == -1 && errno == ERANGE);
    CHECK(semctl(id, 2, GETVAL) == -1 && errno == EINVAL);

    struct sembuf dec = {0, -1, 0};
    CHECK(semop(id, &dec, 1) == 0 && semval(id, 0) == 0);
    struct sembuf nb = {0, -1, IPC_NOWAIT};
    CHECK(semop(id, &nb, 1) == -1 && errno == EAGAIN);
    struct timespec ts = {0, 20 * 1000000};
    CHECK(semtimedop(id, &dec, 1, &ts) == -1 && errno == EAGAIN);
    struct sembuf bad = {2, 1, 0};
    CHECK(semop(id, &bad, 1) == -1 && errno == EFBIG);
    static struct sembuf many[501];
    CHECK(semop(id, many, 501) == -1 && errno == E2BIG);
    CHECK(semop(id, many, 0) == -1 && errno == EINVAL);

    /* All or nothing: +1 on 0 and -1 on 1 (which is 0) leaves 0 alone. */
    struct sembuf two[2] = {{0, 1, 0}, {1, -1, IPC_NOWAIT}};
    CHECK(semop(id, two, 2) == -1 && errno == EAGAIN && semval(id, 0) == 0);

    /* SETALL / GETALL. */
    unsigned short vals[2] = {3, 4};
    CHECK(semctl(id, 0, SETALL, (union semun){.array = vals}) == 0);
    unsigned short got[2] = {0, 0};
    CHECK(semctl(id, 0, GETALL, (union semun){.array = got}) == 0 && got[0] == 3 && got[1] == 4);
    struct semid_ds ds;
    CHECK(semctl(id, 0, IPC_STAT, (union semun){.buf = &ds}) == 0 && ds.sem_nsems == 2 && (ds.sem_perm.mode & 0777) == 0600);

    /* A waiter for an increase: counted in GETNCNT, woken by the increase. */
    CHECK(semctl(id, 0, SETVAL, (union semun){.val = 0}) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        vktest_passed = vktest_failed = 0;
        struct sembuf d = {0, -1, 0};
        CHECK(semop(id, &d, 1) == 0);
        vktest_child_done();
    }
    int n = 0;
    for (int i = 0; i < 5000 && (n = semctl(id, 0, GETNCNT)) != 1; i++)
        sleep_ms(1);
    CHECK(n == 1);
    struct sembuf inc = {0, 1, 0};
    CHECK(semop(id, &inc, 1) == 0);
    CHECK(child_status(pid) == 0);
    CHECK(semval(id, 0) == 0 && semctl(id, 0, GETPID) == pid && semctl(id, 0, GETNCNT) == 0);

    /* A waiter for zero. */
    CHECK(semctl(id, 1, SETVAL, (union semun){.val = 1}) == 0);
    pid = fork();
    if (pid == 0) {
        vktest_passed = vktest_failed = 0;
        struct sembuf z = {1, 0, 0};
        CHECK(semop(id, &z, 1) == 0);
        vktest_child_done();
    }
    for (int i = 0; i < 5000 && (n = semctl(id, 1, GETZCNT)) != 1; i++)
        sleep_ms(1);
    CHECK(n == 1);
    struct sembuf d1 = {1, -1, 0};
    CHECK(semop(id, &d1, 1) == 0);
    CHECK(child_status(pid) == 0);

    /* SEM_UNDO: a child's +2 goes when it exits. */
    pid = fork();
    if (pid == 0) {
        vktest_passed = vktest_failed = 0;
        struct sembuf u = {0, 2, SEM_UNDO};
        CHECK(semop(id, &u, 1) == 0 && semval(id, 0) == 2);
        vktest_child_done();
    }
    CHECK(child_status(pid) == 0);
    CHECK(semval(id, 0) == 0);

    /* Removal wakes a waiter with EIDRM. */
    pid = fork();
    if (pid == 0) {
        vktest_passed = vktest_failed = 0;
        struct sembuf d = {0, -1, 0};
        CHECK(semop(id, &d, 1) == -1 && errno == EIDRM);
        vktest_child_done();
    }
    for (int i = 0; i < 5000 && (n = semctl(id, 0, GETNCNT)) != 1; i++)
        sleep_ms(1);
    CHECK(n == 1);
    CHECK(semctl(id, 0, IPC_RMID) == 0);
    CHECK(child_status(pid) == 0);
    CHECK(semval(id, 0) == -1 && errno == EINVAL);

    /* Keys and sizes. */
    key_t k = key_of(3);
    int a = semget(k, 3, IPC_CREAT | IPC_EXCL | 0600);
    REQUIRE(a >= 0);
    CHECK(semget(k, 2, 0) == a);
    CHECK(semget(k, 4, 0) == -1 && errno == EINVAL);
    CHECK(semget(IPC_PRIVATE, 0, IPC_CREAT | 0600) == -1 && errno == EINVAL);
    CHECK(semget(key_of(4), 1, 0) == -1 && errno == ENOENT);
    pid = fork();
    if (pid == 0) {
        vktest_passed = vktest_failed = 0;
        CHECK(setgid(65534) == 0 && setuid(65534) == 0);
        CHECK(semget(k, 1, 0) == a);
        CHECK(semget(k, 1, 0400) == -1 && errno == EACCES);
        CHECK(semctl(a, 0, GETVAL) == -1 && errno == EACCES);
        CHECK(semctl(a, 0, IPC_RMID) == -1 && errno == EPERM);
        vktest_child_done();
    }
    CHECK(child_status(pid) == 0);
    CHECK(semctl(a, 0, IPC_RMID) == 0);
}

struct msg {
    long mtype;
    char mtext[64];
};

static int send(int id, long type, const char *text, int flags)
{
    struct msg m;
    m.mtype = type;
    memcpy(m.mtext, text, strlen(text));
    return msgsnd(id, &m, strlen(text), flags);
}

static void test_msg(void)
{
    int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    REQUIRE(id >= 0);
    CHECK(send(id, 1, "hello", 0) == 0);
    CHECK(send(id, 2, "world", 0) == 0);
    CHECK(send(id, 3, "x", 0) == 0);
    CHECK(send(id, 0, "zero", 0) == -1 && errno == EINVAL);
    struct msqid_ds ds;
    CHECK(msgctl(id, IPC_STAT, &ds) == 0 && ds.msg_qnum == 3 && ds.__msg_cbytes == 11 && ds.msg_lspid == getpid());

    struct msg m;
    memset(&m, 0, sizeof m);
    CHECK(msgrcv(id, &m, sizeof m.mtext, 2, 0) == 5 && m.mtype == 2 && memcmp(m.mtext, "world", 5) == 0);
    CHECK(msgrcv(id, &m, sizeof m.mtext, -3, IPC_NOWAIT) == 5 && m.mtype == 1);
    CHECK(send(id, 5, "five", 0) == 0);
    CHECK(msgrcv(id, &m, sizeof m.mtext, 3, MSG_EXCEPT) == 4 && m.mtype == 5);
    CHECK(msgrcv(id, &m, 0, 0, IPC_NOWAIT) == -1 && errno == E2BIG);
    CHECK(msgrcv(id, &m, sizeof m.mtext, 7, IPC_NOWAIT) == -1 && errno == ENOMSG);
    CHECK(send(id, 4, "truncated", 0) == 0);
    memset(m.mtext, 0, sizeof m.mtext);
    CHECK(msgrcv(id, &m, 4, 4, MSG_NOERROR) == 4 && memcmp(m.mtext, "trun", 4) == 0 && m.mtext[4] == 0);
    CHECK(msgrcv(id, &m, sizeof m.mtext, 0, 0) == 1 && m.mtype == 3);
    CHECK(msgrcv(id, &m, sizeof m.mtext, 0, IPC_NOWAIT) == -1 && errno == ENOMSG);
    CHECK(msgctl(id, IPC_STAT, &ds) == 0 && ds.msg_qnum == 0 && ds.__msg_cbytes == 0 && ds.msg_lrpid == getpid());

    /* A receiver waits for a sender. */
    pid_t pid = fork();
    if (pid == 0) {
        vktest_passed = vktest_failed = 0;
        struct msg c;
        CHECK(msgrcv(id, &c, sizeof c.mtext, 9, 0) == 3 && memcmp(c.mtext, "abc", 3) == 0);
        vktest_child_done();
    }
    sleep_ms(20);
    CHECK(send(id, 9, "abc", 0) == 0);
    CHECK(child_status(pid) == 0);

    /* A smaller queue: the second message does not fit. */
    CHECK(msgctl(id, IPC_STAT, &ds) == 0 && ds.msg_qbytes > 0);
    ds.msg_qbytes = 8;
    CHECK(msgctl(id, IPC_SET, &ds) == 0);
    CHECK(send(id, 1, "12345", IPC_NOWAIT) == 0);
    CHECK(send(id, 1, "6789", IPC_NOWAIT) == -1 && errno == EAGAIN);
    CHECK(msgrcv(id, &m, sizeof m.mtext, 0, 0) == 5);

    /* Removal wakes a waiting receiver with EIDRM. */
    pid = fork();
    if (pid == 0) {
        vktest_passed = vktest_failed = 0;
        struct msg c;
        CHECK(msgrcv(id, &c, sizeof c.mtext, 0, 0) == -1 && errno == EIDRM);
        vktest_child_done();
    }
    CHECK(wait_sleeping(pid));
    CHECK(msgctl(id, IPC_RMID, NULL) == 0);
    CHECK(child_status(pid) == 0);
    CHECK(msgctl(id, IPC_STAT, &ds) == -1 && errno == EINVAL);

    struct msginfo info;
    CHECK(msgctl(0, IPC_INFO, (struct msqid_ds *)&info) >= 0 && info.msgmax > 0 && info.msgmnb > 0);

    key_t k = key_of(5);
    int a = msgget(k, IPC_CREAT | IPC_EXCL | 0600);
    REQUIRE(a >= 0);
    CHECK(msgget(k, IPC_CREAT | IPC_EXCL | 0600) == -1 && errno == EEXIST);
    CHECK(msgget(k, 0) == a);
    CHECK(msgctl(a, IPC_RMID, NULL) == 0);
    CHECK(msgget(k, 0) == -1 && errno == ENOENT);
}

static long read_long(const char *path, int field)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    for (int i = 0; f && i <= field; i++)
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
    if (f)
        fclose(f);
    return v;
}

/* /proc/sys/kernel's limits agree with what the *_INFO commands answer. */
static void test_sysctl(void)
{
    struct shminfo si;
    CHECK(shmctl(0, IPC_INFO, (struct shmid_ds *)&si) >= 0 && read_long("/proc/sys/kernel/shmmni", 0) == (long)si.shmmni);
    struct msginfo mi;
    CHECK(msgctl(0, IPC_INFO, (struct msqid_ds *)&mi) >= 0);
    CHECK(read_long("/proc/sys/kernel/msgmax", 0) == mi.msgmax && read_long("/proc/sys/kernel/msgmnb", 0) == mi.msgmnb &&
          read_long("/proc/sys/kernel/msgmni", 0) == mi.msgmni);
    struct seminfo se;
    CHECK(semctl(0, 0, IPC_INFO, (union semun){.buf = (struct semid_ds *)&se}) >= 0);
    CHECK(read_long("/proc/sys/kernel/sem", 0) == se.semmsl && read_long("/proc/sys/kernel/sem", 1) == se.semmns &&
          read_long("/proc/sys/kernel/sem", 2) == se.semopm && read_long("/proc/sys/kernel/sem", 3) == se.semmni);
}

int main(void)
{
    vktest_reset_signals();
    test_shm();
    test_sem();
    test_msg();
    test_sysctl();
    vktest_done();
}
