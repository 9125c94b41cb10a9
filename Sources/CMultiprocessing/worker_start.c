// The first thing a pool worker does, before `main`, the Swift runtime or any thread: it makes
// itself die with its parent and ignore the terminal's signals. A constructor, because until
// `Pool.bootstrap` runs (after the loader, the runtime and whatever `main` does first) a worker
// would otherwise outlive a parent killed meanwhile, and threads started before it would keep
// the terminal's signals blocked (programs they start would inherit that mask).
#define _GNU_SOURCE
#ifndef __linux__
#error "swift-multiprocessing's C shim supports Linux only"
#endif

#include "CMultiprocessing.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

void cmp_terminal_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGQUIT);
    sigaddset(set, SIGHUP);
}

int cmp_prepare_worker_process(pid_t parent) {
    // Die with the parent, even if it is SIGKILLed; and if it already died before the request
    // took effect, say so.
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != parent) return 1;
    // The terminal sends these to the whole foreground process group, workers included: the
    // parent alone decides what they mean. Ignored, not handled: a handler would cut short the
    // sleeps and waits of running tasks (EINTR), and is reset by exec anyway.
    struct sigaction ignore;
    sigemptyset(&ignore.sa_mask);
    ignore.sa_flags = 0;
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGINT, &ignore, NULL);
    sigaction(SIGQUIT, &ignore, NULL);
    sigaction(SIGHUP, &ignore, NULL);
    // Blocked since posix_spawn (cmp_spawn_worker): one that arrived meanwhile was discarded
    // when its action became SIG_IGN.
    sigset_t terminal;
    cmp_terminal_signals(&terminal);
    sigprocmask(SIG_UNBLOCK, &terminal, NULL);
    return 0;
}

__attribute__((constructor)) static void cmp_start_worker_process(void) {
    const char *parent = getenv(CMP_WORKER_ENVIRONMENT_KEY);
    if (parent == NULL) return;  // not a worker: the parent program, or any other
    char *end = NULL;
    long pid = strtol(parent, &end, 10);
    if (end == parent || pid <= 0) return;  // not our value: leave the process as it is
    if (cmp_prepare_worker_process((pid_t)pid) != 0) _exit(0);
}
