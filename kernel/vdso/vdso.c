/*
 * vk's vDSO: the functions Linux's x86-64 vDSO exports (LINUX_2.6: clock_gettime,
 * gettimeofday, time, getcpu), mapped by the kernel into every guest process
 * (kernel/src/kern/exec/vdso.rs; AT_SYSINFO_EHDR).
 *
 * Guest clocks are the host's: CLOCK_REALTIME (and _COARSE) is the host's CLOCK_REALTIME,
 * CLOCK_MONOTONIC, _RAW, _COARSE and CLOCK_BOOTTIME are the host's CLOCK_MONOTONIC — the
 * same mapping the kernel's clock_gettime(2) makes (kernel/src/sys/time.rs). So these are
 * read by calling the host's own vDSO, which every stub keeps at a fixed address
 * (platform/src/stub/vdso.rs); its address is in the data page the kernel maps just below
 * this image ([vvar], `vk_vvar`). Everything else — other clocks, pointers outside the
 * guest's address space, getcpu (the CPU is the guest's virtual CPU, which only the kernel
 * knows), or no host vDSO — is the system call, which vk traps as any other.
 *
 * Built by kernel/build.rs: -fPIC -nostdlib -shared with vdso.lds. No relocations, no data
 * of its own: everything it reads is in the vvar page, reached PC-relative.
 */

#define VK_VVAR_MAGIC 0x3130726176766b76UL /* "vkvvar01" */

#define NR_gettimeofday 96
#define NR_time 201
#define NR_clock_gettime 228
#define NR_getcpu 309

struct kernel_timespec {
	long tv_sec;
	long tv_nsec;
};

struct kernel_timeval {
	long tv_sec;
	long tv_usec;
};

struct kernel_timezone {
	int tz_minuteswest;
	int tz_dsttime;
};

/* The vvar page: written by the kernel once, read-only to the guest. */
struct vk_vvar {
	unsigned long magic;
	/* The host vDSO's clock_gettime in the stub, or 0 (no host vDSO). */
	unsigned long host_clock_gettime;
	/* Pointers to results must lie below this (the guest's address space). */
	unsigned long user_end;
};

extern const volatile struct vk_vvar vk_vvar __attribute__((visibility("hidden")));

typedef long (*host_clock_gettime_t)(long, struct kernel_timespec *);

static inline long syscall2(long nr, long a, long b)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
	return ret;
}

static inline long syscall3(long nr, long a, long b, long c)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}

/* The host clock behind a guest clock, or -1 for the ones the system call answers. */
static inline long host_clock(long clk)
{
	switch (clk) {
	case 0: /* CLOCK_REALTIME */
	case 5: /* CLOCK_REALTIME_COARSE */
		return 0;
	case 1: /* CLOCK_MONOTONIC */
	case 4: /* CLOCK_MONOTONIC_RAW */
	case 6: /* CLOCK_MONOTONIC_COARSE */
	case 7: /* CLOCK_BOOTTIME */
		return 1;
	default:
		return -1;
	}
}

/* The host's clock_gettime, when it may be called for a result at `out` of `len` bytes. */
static inline host_clock_gettime_t host_fn(const void *out, unsigned long len)
{
	unsigned long fn = vk_vvar.host_clock_gettime, end = vk_vvar.user_end;
	if (vk_vvar.magic != VK_VVAR_MAGIC || fn == 0)
		return 0;
	if ((unsigned long)out >= end || end - (unsigned long)out < len)
		return 0;
	return (host_clock_gettime_t)fn;
}

long __vdso_clock_gettime(long clk, struct kernel_timespec *ts)
{
	long hc = host_clock(clk);
	host_clock_gettime_t fn = hc < 0 ? 0 : host_fn(ts, sizeof *ts);
	if (fn)
		return fn(hc, ts);
	return syscall2(NR_clock_gettime, clk, (long)ts);
}

long __vdso_gettimeofday(struct kernel_timeval *tv, struct kernel_timezone *tz)
{
	struct kernel_timespec ts;
	host_clock_gettime_t fn = host_fn(tv, sizeof *tv);
	if (tz && !host_fn(tz, sizeof *tz))
		fn = 0;
	if (!fn || fn(0, &ts) != 0)
		return syscall2(NR_gettimeofday, (long)tv, (long)tz);
	if (tv) {
		tv->tv_sec = ts.tv_sec;
		tv->tv_usec = ts.tv_nsec / 1000;
	}
	if (tz) {
		tz->tz_minuteswest = 0;
		tz->tz_dsttime = 0;
	}
	return 0;
}

long __vdso_time(long *t)
{
	struct kernel_timespec ts;
	host_clock_gettime_t fn = host_fn(t, sizeof *t);
	if (!fn || fn(0, &ts) != 0)
		return syscall2(NR_time, (long)t, 0);
	if (t)
		*t = ts.tv_sec;
	return ts.tv_sec;
}

long __vdso_getcpu(unsigned *cpu, unsigned *node, void *cache)
{
	return syscall3(NR_getcpu, (long)cpu, (long)node, (long)cache);
}

long clock_gettime(long, struct kernel_timespec *) __attribute__((weak, alias("__vdso_clock_gettime")));
long gettimeofday(struct kernel_timeval *, struct kernel_timezone *) __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) __attribute__((weak, alias("__vdso_time")));
long getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
