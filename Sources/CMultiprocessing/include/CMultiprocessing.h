// C shims for the few Linux calls Swift cannot express directly: `prctl` and `syscall` are
// variadic, and `posix_spawn`'s file actions are clearer to assemble in C; and the worker's
// start before `main` (worker_start.c), which Swift cannot run.
#ifndef C_MULTIPROCESSING_H
#define C_MULTIPROCESSING_H

#include <sys/types.h>
// Re-exported for Swift: Glibc's module map leaves these headers out.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <signal.h>
#include <pthread.h>

/// Opens a pidfd for `pid` (Linux 5.3+). Returns the fd, or -1 with errno set.
int cmp_pidfd_open(pid_t pid);

/// Spawns `path` as a pool worker.
///
/// The child gets: fd 0 = /dev/null, fd 1 = the caller's stdout, fd 2 = `stderr_fd` (or the
/// caller's stderr when negative), fd 3 = `task_fd` (read end), fd 4 = `result_fd` (write end),
/// fd 5 + i = `extra_fds[i]` for i < `extra_count` (at most `CMP_MAX_EXTRA_FDS`; a negative entry
/// leaves its number closed), and no other descriptor. Every signal handler is reset to the default, and its signal mask
/// holds the terminal's signals (`cmp_terminal_signals`) alone, until the worker ignores them
/// (`cmp_prepare_worker_process`). `envp` is the complete environment of the child.
///
/// Ownership: the caller keeps ownership of every descriptor passed in, on success and failure.
/// Returns 0 and stores the child's pid in `pid_out`, or an errno value.
int cmp_spawn_worker(const char *path, char *const argv[], char *const envp[],
                     int task_fd, int result_fd, int stderr_fd, const int *extra_fds, int extra_count,
                     pid_t *pid_out);

/// The most descriptors `cmp_spawn_worker` passes besides the worker's pipes.
#define CMP_MAX_EXTRA_FDS 4

/// The environment variable that tells a re-executed program it is a pool worker; its value is
/// the parent's pid.
#define CMP_WORKER_ENVIRONMENT_KEY "SWIFT_MULTIPROCESSING_WORKER"

/// Stores in `set` the signals a terminal sends to its whole foreground process group, which pool
/// workers ignore: SIGINT (Ctrl-C), SIGQUIT (Ctrl-backslash) and SIGHUP (hang-up).
void cmp_terminal_signals(sigset_t *set);

/// Makes the calling process a pool worker of `parent` as far as signals go: it is sent SIGKILL
/// when the parent's spawning thread exits (PR_SET_PDEATHSIG), and it ignores the terminal's
/// signals, which it then unblocks (one pending meanwhile is discarded). Idempotent.
///
/// Runs on its own before `main` in every worker (a constructor in worker_start.c), so that it
/// covers the worker from its first instruction; `Pool.bootstrap` calls it again.
/// Returns 0, or 1 when the parent is already gone (the caller should exit).
int cmp_prepare_worker_process(pid_t parent);

/// The process's environment block (`environ`), which Swift cannot name portably.
char **cmp_environ(void);

/// pipe2(O_CLOEXEC): a pipe whose both ends are close-on-exec. Returns 0, or -1 with errno set.
int cmp_pipe_cloexec(int fds[2]);

/// Sets a pipe's buffer size (F_SETPIPE_SZ). Returns the new size, or -1 with errno set.
int cmp_set_pipe_size(int fd, int size);

/// memfd_create(MFD_CLOEXEC, and MFD_ALLOW_SEALING when `allow_sealing`): an anonymous file in
/// memory, named nowhere (nothing to leak when a process dies). Returns the fd, or -1 with errno.
int cmp_memfd_create(const char *name, int allow_sealing);

/// Seals a memory file for good: no write, no change of size, no further seal (fcntl
/// F_ADD_SEALS). Returns 0, or -1 with errno set (EBUSY while a writable mapping exists).
int cmp_seal_read_only(int fd);

/// Frees the memory of a file's range without changing its size (fallocate PUNCH_HOLE |
/// KEEP_SIZE): a mapping of the range then reads zeros. Returns 0, or -1 with errno set.
int cmp_punch_hole(int fd, long long offset, long long length);

/// Sleeps while the 32-bit word at `address` (in memory shared between processes) holds
/// `expected`, for at most `timeout_ms` milliseconds (FUTEX_WAIT). Returns 0 when woken, or -1 with
/// errno set: EAGAIN (the word had changed already), ETIMEDOUT, EINTR.
int cmp_futex_wait(const unsigned int *address, unsigned int expected, int timeout_ms);

/// Wakes every thread of any process sleeping on the word at `address` (FUTEX_WAKE). Returns the
/// number woken, or -1 with errno set.
int cmp_futex_wake(const unsigned int *address);

/// Names the calling thread (shown by `top -H`, debuggers). Best effort.
void cmp_set_thread_name(const char *name);

/// Asks, once per thread (later calls return 0 at once), for a time slice of `nanoseconds` for
/// the calling thread, keeping its policy (SCHED_OTHER) and nice value; threads and processes it
/// creates from then on get the default slice again (SCHED_FLAG_RESET_ON_FORK). Linux 6.12+'s
/// scheduler (EEVDF) then lets the thread, when woken, preempt one with a longer slice at once (a
/// worker computing on its core) instead of waiting for that one's slice to end; earlier kernels
/// ignore the slice. Returns 0, or -1 with errno set (a seccomp filter, say).
int cmp_request_short_slice_once(unsigned long long nanoseconds);

/// Registers the process for expedited private memory barriers (membarrier(2),
/// MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, Linux 4.14+). Returns 0, or -1 with errno set.
int cmp_membarrier_register(void);

/// Makes every thread of the process that runs now pass a full memory barrier before this
/// returns (membarrier(2), MEMBARRIER_CMD_PRIVATE_EXPEDITED), once `cmp_membarrier_register`
/// succeeded. Returns 0, or -1 with errno set.
int cmp_membarrier(void);

/// The calling thread's identity as a word, in one instruction where the architecture keeps a
/// pointer to the thread's control block in a register (x86-64: `%fs:0`, the block's pointer to
/// itself; arm64: `tpidr_el0`), else `pthread_self()`: nonzero, and another living thread's is
/// another. `volatile`: never reused across a point where the caller may move to another thread.
static inline unsigned long cmp_thread_word(void) {
    unsigned long word;
#if defined(__x86_64__)
    __asm__ __volatile__("movq %%fs:0, %0" : "=r"(word));
#elif defined(__aarch64__)
    __asm__ __volatile__("mrs %0, tpidr_el0" : "=r"(word));
#else
    word = (unsigned long)pthread_self();
#endif
    return word;
}

/// Keeps the compiler from moving any memory access across this point (no instruction).
static inline void cmp_compiler_barrier(void) { __asm__ __volatile__("" ::: "memory"); }

/// Makes glibc's malloc keep freed memory for reuse instead of returning it to the kernel at
/// once: blocks up to 32 MiB come from the heap rather than fresh mmaps, and up to 32 MiB of free
/// heap is kept.
/// For worker processes, which allocate and free payload buffers of the same sizes chunk after
/// chunk (every fresh page costs a page fault). No-op where malloc is not glibc's.
void cmp_keep_freed_memory(void);

/// The number of CPUs this process may run on (its affinity mask), at least 1.
int cmp_available_cpus(void);

/// The CPU the calling thread runs on (sched_getcpu: with glibc 2.35+ a load from the thread's
/// rseq area, no system call), or -1 where it cannot tell.
int cmp_current_cpu(void);

/// Moves the calling thread off CPU `cpu`, to another CPU its affinity mask allows, and leaves the
/// mask as it was (so the kernel may move it again later). Returns 1 when it moved, 0 when it
/// could not (`cpu` not allowed, one CPU allowed, or an error).
int cmp_move_off_cpu(int cpu);

/// Moves the calling thread to CPU `cpu`, if its affinity mask allows it, and leaves the mask as
/// it was. Returns 1 when it moved, 0 when it could not.
int cmp_move_to_cpu(int cpu);

/// Flushes every stdio output stream (fflush(NULL)) when stdout or stderr holds bytes not yet
/// written (__fpending), and does nothing otherwise: after each task a worker makes sure what the
/// task printed has gone out, and fflush(NULL) with nothing to write still walked every stream
/// under glibc's list lock, ~200 instructions a task. Returns what fflush returned, or 0.
int cmp_flush_printed_output(void);

/// Sends `signal` to the process `pidfd` refers to (pidfd_send_signal, Linux 5.1+): never to
/// another process that reused its pid. Returns 0, or -1 with errno set.
int cmp_pidfd_send_signal(int pidfd, int signal);

/// Sets RLIMIT_DATA (soft and hard) of process `pid` (0: the calling process) to `bytes`
/// (prlimit, a GNU extension Swift cannot see). Returns 0, or -1 with errno set.
int cmp_limit_data_segment(pid_t pid, unsigned long long bytes);

/// The number of threads of the calling process (entries of /proc/self/task), or -1.
int cmp_thread_count(void);

/// Starts the fork server (fork_server.c): forks the calling process, which must be
/// single-threaded, into a "zygote" that makes workers on request. Returns 1 in the calling
/// process, with the socket to the zygote (close-on-exec) in `socket_out` and its pid in `pid_out`;
/// 0 in a new worker, cloned from the zygote (its parent is the calling process), which has the
/// descriptors and the environment of its request and the worker's signal policy; or an errno
/// value (ENOTSUP: glibc's thread descriptor could not be located) when nothing was forked.
int cmp_fork_server_start(int *socket_out, pid_t *pid_out);

/// Asks the zygote behind `socket` for a worker, which gets: fd 0 = /dev/null, fd 1 = the
/// caller's stdout, fd 2 = `stderr_fd` (the caller's stderr when negative), fd 3 = `task_fd`,
/// fd 4 = `result_fd`, fd 5 + i = `extra_fds[i]` (a negative entry leaves its number closed), no
/// other descriptor; `envp` as its complete environment. The descriptors stay the caller's.
/// One request at a time per socket (the caller serializes them).
/// Returns 0 and stores the worker's pid (a child of the caller) in `pid_out`, or an errno value:
/// EPIPE or ECONNRESET when the zygote is gone, ETIMEDOUT when it did not answer within the
/// socket's timeout, the zygote's own error (its clone failed: EAGAIN, ENOSYS, …) otherwise.
/// `sent_out` says whether the zygote may have cloned a worker holding the descriptors although
/// the request failed (it got the request and did not say it failed): then they must not serve
/// another worker.
int cmp_fork_server_request(int socket, char *const envp[], int stderr_fd, int task_fd, int result_fd,
                            const int *extra_fds, int extra_count, pid_t *pid_out, int *sent_out);

/// A reply the zygote sent after its request gave up waiting (read without waiting, once the
/// zygote was killed): 1 and the pid of the worker it cloned then, or 0.
int cmp_fork_server_late_reply(int socket, pid_t *pid_out);

#endif
