#define _GNU_SOURCE
#ifndef __linux__
#error "swift-multiprocessing's C shim supports Linux only"
#endif

#include "CMultiprocessing.h"

#include <errno.h>
#include <string.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <linux/futex.h>
#include <time.h>
// stdio_ext.h (`__fpending`) is in glibc and musl alike.
#include <stdio.h>
#include <stdio_ext.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

extern char **environ;

char **cmp_environ(void) { return environ; }

int cmp_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

// Moves `fd` to a number >= 10 (close-on-exec) so that dup2 onto 0...4 in the child never sees
// source == target, where dup2 would be a no-op that leaves close-on-exec set.
static int high_dup(int fd) { return fcntl(fd, F_DUPFD_CLOEXEC, 10); }

int cmp_spawn_worker(const char *path, char *const argv[], char *const envp[],
                     int task_fd, int result_fd, int stderr_fd, const int *extra_fds, int extra_count,
                     pid_t *pid_out) {
    int err = 0;
    int t = -1, r = -1, e = -1;
    int x[CMP_MAX_EXTRA_FDS];
    for (int i = 0; i < CMP_MAX_EXTRA_FDS; i++) x[i] = -1;
    if (extra_count < 0 || extra_count > CMP_MAX_EXTRA_FDS) return EINVAL;
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    int have_actions = 0, have_attr = 0;

    if ((t = high_dup(task_fd)) < 0 || (r = high_dup(result_fd)) < 0 ||
        (stderr_fd >= 0 && (e = high_dup(stderr_fd)) < 0)) {
        err = errno;
        goto done;
    }
    for (int i = 0; i < extra_count; i++) {
        if (extra_fds[i] >= 0 && (x[i] = high_dup(extra_fds[i])) < 0) {
            err = errno;
            goto done;
        }
    }
    if ((err = posix_spawn_file_actions_init(&actions)) != 0) goto done;
    have_actions = 1;
    if ((err = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)) != 0) goto done;
    if (e >= 0 && (err = posix_spawn_file_actions_adddup2(&actions, e, 2)) != 0) goto done;
    if ((err = posix_spawn_file_actions_adddup2(&actions, t, 3)) != 0) goto done;
    if ((err = posix_spawn_file_actions_adddup2(&actions, r, 4)) != 0) goto done;
    for (int i = 0; i < extra_count; i++) {
        if (x[i] >= 0 && (err = posix_spawn_file_actions_adddup2(&actions, x[i], 5 + i)) != 0) goto done;
    }
    if ((err = posix_spawn_file_actions_addclosefrom_np(&actions, 5 + extra_count)) != 0) goto done;

    if ((err = posix_spawnattr_init(&attr)) != 0) goto done;
    have_attr = 1;
    // The terminal's signals start blocked: posix_spawn cannot make the worker ignore them, so
    // they wait until the worker ignores them itself (cmp_prepare_worker_process), which then
    // discards one already pending. Every other signal is unblocked and has its default action.
    sigset_t terminal, all;
    cmp_terminal_signals(&terminal);
    sigfillset(&all);
    if ((err = posix_spawnattr_setsigmask(&attr, &terminal)) != 0) goto done;
    if ((err = posix_spawnattr_setsigdefault(&attr, &all)) != 0) goto done;
    if ((err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) != 0) goto done;

    err = posix_spawn(pid_out, path, &actions, &attr, argv, envp);

done:
    if (have_actions) posix_spawn_file_actions_destroy(&actions);
    if (have_attr) posix_spawnattr_destroy(&attr);
    if (t >= 0) close(t);
    if (r >= 0) close(r);
    if (e >= 0) close(e);
    for (int i = 0; i < CMP_MAX_EXTRA_FDS; i++) if (x[i] >= 0) close(x[i]);
    return err;
}

int cmp_available_cpus(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int cmp_current_cpu(void) { return sched_getcpu(); }

// Moves the calling thread into `target` (a subset of `allowed`), then gives it `allowed` back:
// the kernel migrates a thread before sched_setaffinity returns, and a wider mask does not move it.
static int cmp_move_within(const cpu_set_t *target, const cpu_set_t *allowed) {
    if (sched_setaffinity(0, sizeof(*target), target) != 0) return 0;
    sched_setaffinity(0, sizeof(*allowed), allowed);
    return 1;
}

int cmp_move_off_cpu(int cpu) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return 0;
    if (!CPU_ISSET(cpu, &allowed) || CPU_COUNT(&allowed) < 2) return 0;
    cpu_set_t others = allowed;
    CPU_CLR(cpu, &others);
    return cmp_move_within(&others, &allowed);
}

int cmp_move_to_cpu(int cpu) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return 0;
    if (!CPU_ISSET(cpu, &allowed)) return 0;
    cpu_set_t only;
    CPU_ZERO(&only);
    CPU_SET(cpu, &only);
    return cmp_move_within(&only, &allowed);
}

int cmp_flush_printed_output(void) {
    if (__fpending(stdout) == 0 && __fpending(stderr) == 0) return 0;
    return fflush(NULL);
}

int cmp_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int cmp_set_pipe_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }

int cmp_memfd_create(const char *name, int allow_sealing) {
    return memfd_create(name, MFD_CLOEXEC | (allow_sealing ? MFD_ALLOW_SEALING : 0));
}

int cmp_futex_wait(const unsigned int *address, unsigned int expected, int timeout_ms) {
    struct timespec timeout = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    return (int)syscall(SYS_futex, address, FUTEX_WAIT, expected, timeout_ms >= 0 ? &timeout : NULL, NULL, 0);
}

int cmp_futex_wake(const unsigned int *address) {
    return (int)syscall(SYS_futex, address, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
}

int cmp_seal_read_only(int fd) { return fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL); }

int cmp_punch_hole(int fd, long long offset, long long length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
}

void cmp_set_thread_name(const char *name) {
    char short_name[16];
    strncpy(short_name, name, sizeof(short_name) - 1);
    short_name[sizeof(short_name) - 1] = 0;
    pthread_setname_np(pthread_self(), short_name);
}

// sched_setattr(2)'s argument (its first version, 48 bytes): glibc declares neither.
struct cmp_sched_attr {
    unsigned int size;
    unsigned int policy;
    unsigned long long flags;
    int nice;
    unsigned int priority;
    unsigned long long runtime;
    unsigned long long deadline;
    unsigned long long period;
};

int cmp_request_short_slice_once(unsigned long long nanoseconds) {
    static __thread int requested;
    if (requested) return 0;
    requested = 1;
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    if (errno != 0) return -1;
    struct cmp_sched_attr attr = {sizeof(struct cmp_sched_attr), 0 /* SCHED_OTHER */,
        0x01 /* SCHED_FLAG_RESET_ON_FORK */, nice, 0, nanoseconds, 0, 0};
    return (int)syscall(SYS_sched_setattr, 0, &attr, 0);
}

int cmp_membarrier_register(void) {
#ifdef SYS_membarrier
    return (int)syscall(SYS_membarrier, 1 << 4 /* MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED */, 0, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int cmp_membarrier(void) {
#ifdef SYS_membarrier
    return (int)syscall(SYS_membarrier, 1 << 3 /* MEMBARRIER_CMD_PRIVATE_EXPEDITED */, 0, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

void cmp_keep_freed_memory(void) {
#if defined(__GLIBC__)
    // Blocks up to 32 MiB come from the heap (larger ones are still mapped and unmapped);
    // the heap is trimmed once more than 32 MiB is free at its top. So a worker keeps at most
    // about 32 MiB of freed memory per heap for reuse.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
#endif
}

int cmp_limit_data_segment(pid_t pid, unsigned long long bytes) {
    struct rlimit limit = {.rlim_cur = (rlim_t)bytes, .rlim_max = (rlim_t)bytes};
    return prlimit(pid, RLIMIT_DATA, &limit, NULL);
}

int cmp_pidfd_send_signal(int pidfd, int signal) {
#ifdef SYS_pidfd_send_signal
    return (int)syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}
