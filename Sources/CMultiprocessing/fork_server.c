// The fork server (start method `forkServer`): a copy of the program forked in `Pool.bootstrap`
// (the "zygote"), which waits on a unix socket and makes each worker a pool asks for by cloning
// itself. The clone is made with CLONE_PARENT, so the worker is a child of the pool's process, as
// a spawned worker is: the pool reaps it with waitpid, watches it with a pidfd of its own child,
// and the worker dies with the pool's process (PR_SET_PDEATHSIG), not with the zygote.
//
// The zygote runs this C code alone: no Swift, no allocation but the request buffer's, nothing
// that takes a lock. A worker leaves `cmp_fork_server_start` returning 0, with the descriptors and
// the environment a spawned worker gets (see cmp_spawn_worker), and goes on in `Pool.bootstrap`.
#define _GNU_SOURCE
#ifndef __linux__
#error "swift-multiprocessing's C shim supports Linux only"
#endif

#include "CMultiprocessing.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

extern char **environ;

// A request's fixed part; the environment's strings follow it, each ending in NUL.
struct request {
    uint32_t magic;
    uint32_t present;      // bit i: target descriptor `targets[i]` comes with the request
    uint32_t extra_count;  // passed descriptors: targets 5 ... 5 + extra_count - 1
    uint32_t env_count;
};

struct reply {
    int32_t error;  // 0, or an errno value
    int32_t pid;
};

#define REQUEST_MAGIC 0x6d70667au
// Target descriptors in a request's order: stdout, stderr, tasks, results, then the passed ones.
#define FIXED_TARGETS 4
#define MAX_TARGETS (FIXED_TARGETS + CMP_MAX_EXTRA_FDS)
// The largest request (the environment's strings included); a larger one falls back to spawn.
#define MAX_REQUEST (256 * 1024)

static int target_number(int index) { return index < FIXED_TARGETS ? index + 1 : 5 + (index - FIXED_TARGETS); }

int cmp_thread_count(void) {
    DIR *tasks = opendir("/proc/self/task");
    if (tasks == NULL) return -1;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL) {
        if (entry->d_name[0] != '.') count++;
    }
    closedir(tasks);
    return count;
}

// Where glibc keeps the calling thread's id in its thread descriptor (`pthread_self()`), which
// glibc's own fork updates in the child (CLONE_CHILD_SETTID) and a raw clone must update too:
// its mutexes and signals to the thread itself read it. glibc publishes the field's place for
// debuggers (libthread_db's `_thread_db_pthread_tid`: size in bits, count, offset); this one is
// checked against the kernel's answer before it is trusted. -1: unknown (no fork server).
static long tid_offset(void) {
    const uint32_t *descriptor = dlsym(RTLD_DEFAULT, "_thread_db_pthread_tid");
    if (descriptor == NULL || descriptor[0] != 32 || descriptor[2] > 4096) return -1;
    long offset = (long)descriptor[2];
    pid_t recorded;
    memcpy(&recorded, (char *)pthread_self() + offset, sizeof(recorded));
    return recorded == (pid_t)syscall(SYS_gettid) ? offset : -1;
}

// clone3 with CLONE_PARENT: a copy of the zygote whose parent is the zygote's parent. The child
// returns 0 on the zygote's stack, like fork's; its thread id lands in glibc's descriptor.
static pid_t clone_as_sibling(long offset) {
    struct clone_args args;
    memset(&args, 0, sizeof(args));
    args.flags = CLONE_PARENT | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
    args.child_tid = (uint64_t)(uintptr_t)((char *)pthread_self() + offset);
    // No exit signal of its own (clone3 refuses one with CLONE_PARENT): the zygote's, SIGCHLD, applies.
    args.exit_signal = 0;
    return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

static void ignore_terminal_signals(void) {
    struct sigaction ignore;
    memset(&ignore, 0, sizeof(ignore));
    sigemptyset(&ignore.sa_mask);
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGINT, &ignore, NULL);
    sigaction(SIGQUIT, &ignore, NULL);
    sigaction(SIGHUP, &ignore, NULL);
}

// The worker's side of a request, in the new child: its descriptors, its environment, its
// signals. Returns 0, or an errno value (the child then exits with status 127).
static int become_worker(char *buffer, size_t length, const int *received, int received_count, char *name) {
    struct request request;
    memcpy(&request, buffer, sizeof(request));
    // Every received descriptor to a number above any target first, so that no dup2 below
    // overwrites a source not moved yet.
    int high[MAX_TARGETS];
    for (int i = 0; i < received_count; i++) {
        if ((high[i] = fcntl(received[i], F_DUPFD_CLOEXEC, 64)) < 0) return errno;
    }
    int next = 0, highest = 4 + (int)request.extra_count;
    for (int index = 0; index < FIXED_TARGETS + (int)request.extra_count; index++) {
        int target = target_number(index);
        if (request.present & (1u << index)) {
            if (dup2(high[next++], target) < 0) return errno;
        } else {
            close(target);
        }
    }
    // fd 0 stays the zygote's /dev/null; everything above the targets goes (the socket too).
    if (syscall(SYS_close_range, highest + 1, ~0u, 0) != 0) return errno;

    // The environment the request names (the spawn's, the worker key included), in memory of
    // this process alone.
    char **env = calloc(request.env_count + 1, sizeof(char *));
    if (env == NULL) return ENOMEM;
    char *cursor = buffer + sizeof(request), *end = buffer + length;
    for (uint32_t i = 0; i < request.env_count; i++) {
        char *nul = memchr(cursor, 0, (size_t)(end - cursor));
        if (nul == NULL) return EINVAL;
        env[i] = cursor;
        cursor = nul + 1;
    }
    environ = env;

    // Signals as posix_spawn leaves them for a spawned worker: no ignored signal but the
    // terminal's (cmp_prepare_worker_process ignores those again), nothing blocked.
    for (int signal = 1; signal < NSIG; signal++) {
        struct sigaction current;
        // The terminal's stay ignored until cmp_prepare_worker_process ignores them for good:
        // reset here, a Ctrl-C in between would kill the starting worker.
        if (signal == SIGKILL || signal == SIGSTOP || signal == SIGINT || signal == SIGQUIT || signal == SIGHUP)
            continue;
        if (sigaction(signal, NULL, &current) == 0 && current.sa_handler == SIG_IGN) {
            struct sigaction fallback;
            memset(&fallback, 0, sizeof(fallback));
            fallback.sa_handler = SIG_DFL;
            sigaction(signal, &fallback, NULL);
        }
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    // The program's own name again (the zygote's is its own, for `ps`).
    prctl(PR_SET_NAME, name, 0, 0, 0);
    return 0;
}

// A message of the one buffer `iov` describes, with `control_length` bytes of `control` for its
// descriptors (the request's and the zygote's side of it alike).
static struct msghdr one_buffer_message(struct iovec *iov, void *control, size_t control_length) {
    struct msghdr message;
    memset(&message, 0, sizeof(message));
    message.msg_iov = iov;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = control_length;
    return message;
}

// The zygote's loop. Returns only in a new worker (0). `parent` is the pool's process.
static int serve(int socket, pid_t parent, long offset, char *name) {
    char *buffer = malloc(MAX_REQUEST);
    if (buffer == NULL) _exit(1);
    for (;;) {
        int received[MAX_TARGETS];
        int received_count = 0;
        char control[CMSG_SPACE(sizeof(int) * MAX_TARGETS)];
        struct iovec iov = {buffer, MAX_REQUEST};
        struct msghdr message = one_buffer_message(&iov, control, sizeof(control));
        ssize_t n = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
        if (n == 0) _exit(0);  // the pool's process closed its end (or is gone)
        if (n < 0) {
            if (errno == EINTR) continue;
            _exit(1);
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&message); c != NULL; c = CMSG_NXTHDR(&message, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                for (int i = 0; i < count && received_count < MAX_TARGETS; i++) {
                    memcpy(&received[received_count++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                }
            }
        }
        struct reply reply = {0, 0};
        struct request request;
        if ((size_t)n < sizeof(request) || (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
            reply.error = EMSGSIZE;
        } else {
            memcpy(&request, buffer, sizeof(request));
            if (request.magic != REQUEST_MAGIC || request.extra_count > CMP_MAX_EXTRA_FDS ||
                __builtin_popcount(request.present) != received_count) {
                reply.error = EINVAL;
            }
        }
        if (reply.error == 0) {
            pid_t pid = clone_as_sibling(offset);
            if (pid == 0) {
                int error = become_worker(buffer, (size_t)n, received, received_count, name);
                if (error != 0) _exit(127);
                // Die with the pool's process; it may have died before the request took effect.
                if (cmp_prepare_worker_process(parent) != 0) _exit(0);
                return 0;
            }
            if (pid < 0) reply.error = errno;
            else reply.pid = pid;
        }
        for (int i = 0; i < received_count; i++) close(received[i]);
        while (send(socket, &reply, sizeof(reply), MSG_NOSIGNAL) < 0 && errno == EINTR) {}
    }
}

int cmp_fork_server_start(int *socket_out, pid_t *pid_out) {
    long offset = tid_offset();
    if (offset < 0) return ENOTSUP;
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return errno;
    char name[16] = {0};
    prctl(PR_GET_NAME, name, 0, 0, 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int error = errno;
        close(pair[0]);
        close(pair[1]);
        return error;
    }
    if (pid > 0) {
        close(pair[1]);
        // A zygote that stopped answering (stopped, say) fails the request instead of hanging
        // it: the pool then spawns.
        struct timeval timeout = {5, 0};
        setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
        *socket_out = pair[0];
        *pid_out = pid;
        return 1;
    }
    // The zygote: it dies with the pool's process (its forking thread, the main thread) and
    // ignores the terminal's signals, as workers do.
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != parent) _exit(0);
    ignore_terminal_signals();
    prctl(PR_SET_NAME, "mp-forkserver", 0, 0, 0);
    // It holds its socket (fd 3) and /dev/null as 0-2, nothing else: what the program had open
    // (its stdout a pipe someone reads to its end, say) is not kept open by it.
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(pair[1], 3) < 0) _exit(1);
    for (int fd = 0; fd <= 2; fd++) {
        if (dup2(null, fd) < 0) _exit(1);
    }
    if (syscall(SYS_close_range, 4, ~0u, 0) != 0) _exit(1);
    return serve(3, parent, offset, name);
}

int cmp_fork_server_request(int socket, char *const envp[], int stderr_fd, int task_fd, int result_fd,
                            const int *extra_fds, int extra_count, pid_t *pid_out, int *sent_out) {
    *sent_out = 0;
    if (extra_count < 0 || extra_count > CMP_MAX_EXTRA_FDS) return EINVAL;
    size_t length = sizeof(struct request);
    uint32_t env_count = 0;
    for (; envp[env_count] != NULL; env_count++) length += strlen(envp[env_count]) + 1;
    if (length > MAX_REQUEST) return E2BIG;
    char *buffer = malloc(length);
    if (buffer == NULL) return ENOMEM;
    int sources[MAX_TARGETS] = {1, stderr_fd >= 0 ? stderr_fd : 2, task_fd, result_fd};
    for (int i = 0; i < extra_count; i++) sources[FIXED_TARGETS + i] = extra_fds[i];
    struct request request = {REQUEST_MAGIC, 0, (uint32_t)extra_count, env_count};
    int sent[MAX_TARGETS];
    int sent_count = 0;
    for (int index = 0; index < FIXED_TARGETS + extra_count; index++) {
        // Only open descriptors go (this process's stdout may be closed; -1: left closed).
        if (sources[index] >= 0 && fcntl(sources[index], F_GETFD) >= 0) {
            request.present |= 1u << index;
            sent[sent_count++] = sources[index];
        }
    }
    memcpy(buffer, &request, sizeof(request));
    char *cursor = buffer + sizeof(request);
    for (uint32_t i = 0; i < env_count; i++) {
        size_t n = strlen(envp[i]) + 1;
        memcpy(cursor, envp[i], n);
        cursor += n;
    }
    char control[CMSG_SPACE(sizeof(int) * MAX_TARGETS)];
    memset(control, 0, sizeof(control));
    struct iovec iov = {buffer, length};
    struct msghdr message = one_buffer_message(&iov, control, CMSG_SPACE(sizeof(int) * sent_count));
    struct cmsghdr *c = CMSG_FIRSTHDR(&message);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * sent_count);
    memcpy(CMSG_DATA(c), sent, sizeof(int) * sent_count);
    ssize_t n;
    while ((n = sendmsg(socket, &message, MSG_NOSIGNAL)) < 0 && errno == EINTR) {}
    int error = n < 0 ? errno : 0;
    free(buffer);
    if (error != 0) return error;
    // From here on the zygote may have cloned a worker holding these descriptors.
    *sent_out = 1;
    struct reply reply;
    while ((n = recv(socket, &reply, sizeof(reply), 0)) < 0 && errno == EINTR) {}
    // SO_RCVTIMEO's EAGAIN, told apart from a clone's own EAGAIN in the reply.
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
    if (n != (ssize_t)sizeof(reply)) return EPIPE;  // 0: the zygote is gone
    // The zygote's own failure: nothing was cloned.
    if (reply.error != 0) {
        *sent_out = 0;
        return reply.error;
    }
    *pid_out = reply.pid;
    return 0;
}

int cmp_fork_server_late_reply(int socket, pid_t *pid_out) {
    struct reply reply;
    ssize_t n;
    while ((n = recv(socket, &reply, sizeof(reply), MSG_DONTWAIT)) < 0 && errno == EINTR) {}
    if (n != (ssize_t)sizeof(reply) || reply.error != 0 || reply.pid <= 0) return 0;
    *pid_out = reply.pid;
    return 1;
}
