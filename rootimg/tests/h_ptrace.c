/* h_ptrace: a helper for the debugger test — a child traced by this process (TRACEME) sits
 * in a signal-delivery-stop (SIGSTOP) while this process sleeps. Prints "traced PID" once the
 * stop has been reported, then sleeps for a minute. */
#include <signal.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
            _exit(1);
        raise(SIGSTOP);
        _exit(0);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st))
        return 1;
    if (ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)PTRACE_O_TRACESYSGOOD) != 0)
        return 1;
    char line[32];
    int n = snprintf(line, sizeof line, "traced %d\n", pid);
    if (write(1, line, (size_t)n) != n)
        return 1;
    sleep(60);
    return 0;
}
