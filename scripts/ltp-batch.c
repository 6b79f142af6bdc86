/*
 * ltp-batch.c — run a list of LTP tests one after another, the same way natively and as init
 * under vk (scripts/ltp-run builds it static with musl and drives it).
 *
 * usage: ltp-batch [-t SECONDS] [-s START] [-m DEVICE:DIR] LIST
 *
 * LIST has one test a line: `TAG TMPDIR PROGRAM [ARGS...]` (words separated by blanks; PROGRAM is
 * looked up in $PATH); a line `=NAME=VALUE` sets an environment variable for the tests after it. Lines before the START-th (counted from 0) are skipped, so a kernel that
 * died in the middle of a list can be restarted after the test it died in. -m mounts an ext2
 * DEVICE on DIR first (under vk: the disk for TMPDIR=DIR). For each test:
 *   - a scratch directory TMPDIR/ltp-batch.TAG is made and becomes the test's working directory;
 *   - the test runs in a session of its own (setsid), stdin /dev/null, TMPDIR set, its output on
 *     ours;
 *   - after SECONDS (default 30) its whole process group gets SIGKILL: that is a timeout;
 *   - once the test's process has gone, what is left of its process group is killed too, every
 *     orphan we inherit is reaped (as init, or natively as a child subreaper);
 *   - the scratch directory is removed (`rm -rf`).
 * Markers on stdout frame each test's output, for ltp-run to parse:
 *   <<<ltp-begin TAG>>>  ...  <<<ltp-end TAG status=N signal=S timeout=0|1 ms=T>>>
 * The list ends with <<<ltp-done>>>; as init, ltp-batch then syncs and exits (the kernel halts).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 64

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Reap whatever has exited; returns the status of `pid` in *status when it was among them. */
static int reap(pid_t pid, int *status)
{
	int got = 0, st;
	pid_t w;
	while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
		if (w == pid) {
			*status = st;
			got = 1;
		}
	}
	return got;
}

static void remove_tree(const char *dir)
{
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/rm", "rm", "-rf", dir, (char *)NULL);
		_exit(127);
	}
	if (pid > 0) {
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	}
}

static void run_one(char *tag, char *tmpdir, char **argv, int timeout_s)
{
	char scratch[4096];
	int status = 0, timed_out = 0, have = 0;
	long start = now_ms();

	snprintf(scratch, sizeof(scratch), "%s/ltp-batch.%s", tmpdir, tag);
	remove_tree(scratch);
	if (mkdir(scratch, 0777) < 0 && errno != EEXIST)
		fprintf(stderr, "ltp-batch: mkdir %s: %s\n", scratch, strerror(errno));
	chmod(scratch, 0777);

	printf("\n<<<ltp-begin %s>>>\n", tag);
	fflush(stdout);

	pid_t pid = fork();
	if (pid < 0) {
		printf("ltp-batch: fork: %s\n", strerror(errno));
		status = 255 << 8;
	} else if (pid == 0) {
		setsid();
		if (chdir(scratch) < 0)
			fprintf(stderr, "ltp-batch: chdir %s: %s\n", scratch, strerror(errno));
		int null = open("/dev/null", O_RDONLY);
		if (null >= 0) {
			dup2(null, 0);
			close(null);
		}
		setenv("TMPDIR", tmpdir, 1);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(argv[0], argv);
		fprintf(stderr, "ltp-batch: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	} else {
		long deadline = start + timeout_s * 1000L;
		while (!(have = reap(pid, &status))) {
			if (now_ms() >= deadline) {
				timed_out = 1;
				kill(-pid, SIGKILL);
				kill(pid, SIGKILL);
				while (!(have = reap(pid, &status)))
					usleep(10000);
				break;
			}
			usleep(20000);
		}
		/* What the test left behind in its session goes too. */
		kill(-pid, SIGKILL);
		usleep(20000);
		reap(pid, &status);
	}
	long took = now_ms() - start;
	fflush(stdout);
	printf("\n<<<ltp-end %s status=%d signal=%d timeout=%d ms=%ld>>>\n", tag,
	       WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status) ? WTERMSIG(status) : 0,
	       timed_out, took);
	fflush(stdout);
	if (chdir("/") < 0)
		perror("chdir /");
	remove_tree(scratch);
}

int main(int argc, char **argv)
{
	int timeout_s = 30, start = 0, opt;
	char *mnt = NULL;

	while ((opt = getopt(argc, argv, "t:s:m:")) != -1) {
		switch (opt) {
		case 't': timeout_s = atoi(optarg); break;
		case 's': start = atoi(optarg); break;
		case 'm': mnt = optarg; break;
		default:
			fprintf(stderr, "usage: ltp-batch [-t SECONDS] [-s START] [-m DEVICE:DIR] LIST\n");
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: ltp-batch [-t SECONDS] [-s START] [-m DEVICE:DIR] LIST\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getpid() != 1)
		prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (mnt) {
		char *colon = strchr(mnt, ':');
		if (!colon) {
			fprintf(stderr, "ltp-batch: -m DEVICE:DIR\n");
			return 2;
		}
		*colon = '\0';
		mkdir(colon + 1, 0777);
		if (mount(mnt, colon + 1, "ext2", 0, NULL) < 0) {
			printf("ltp-batch: mount %s on %s: %s\n", mnt, colon + 1, strerror(errno));
			return 1;
		}
		chmod(colon + 1, 01777);
	}
	FILE *list = fopen(argv[optind], "r");
	if (!list) {
		perror(argv[optind]);
		return 1;
	}
	char line[4096];
	int n = 0;
	while (fgets(line, sizeof(line), list)) {
		if (line[0] == '=') {
			line[strcspn(line, "\n")] = '\0';
			char *eq = strchr(line + 1, '=');
			if (eq) {
				*eq = '\0';
				setenv(line + 1, eq + 1, 1);
			}
			continue;
		}
		char *words[MAX_ARGS + 3];
		int nw = 0;
		for (char *w = strtok(line, " \t\n"); w && nw < MAX_ARGS + 2; w = strtok(NULL, " \t\n"))
			words[nw++] = w;
		if (nw < 3 || words[0][0] == '#')
			continue;
		if (n++ < start)
			continue;
		words[nw] = NULL;
		run_one(words[0], words[1], &words[2], timeout_s);
	}
	fclose(list);
	printf("\n<<<ltp-done>>>\n");
	fflush(stdout);
	if (mnt) {
		sync();
		umount(mnt + strlen(mnt) + 1);
	}
	sync();
	return 0;
}
