// The floor under the `map` echo row of Scripts/compare-cpython, in C: limits2.c's bulk echo (64 x
// 4 MiB to a child and back through a shared region, one copy each way, the child copying out and
// back in), but with what a `map` of an echo must do and limits2.c does not: every answer lands
// in memory new to the process (64 fresh 4 MiB buffers, kept until the end, as the 64 arrays that
// `map` returns are). limits2.c copies every answer into the same buffer, which stays in the
// cache and is never faulted in again; on a virtual machine that hands freed memory back to its
// host, a fresh page costs more than copying it (see the Performance article).
//  fresh_echo_GBps            each answer copied into a fresh buffer, its pages faulted in by the copy
//  fresh_echo_prepared_GBps   the same, with a second thread making all the buffers present
//                             (MADV_POPULATE_WRITE) while the echo runs, as fast as it can: what
//                             one thread preparing memory ahead (the pool's PreparedBuffers) allows
//                             at best
// Built and run by Scripts/compare-cpython (gcc -O2 -pthread); prints one line of JSON.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define BIG (4u << 20)
#define COUNT 64
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
typedef struct { _Alignas(64) atomic_long req; _Alignas(64) atomic_long rsp; } Line;
static char *fresh[COUNT];
static atomic_int prepared;
static void *prepare(void *unused) {
    (void)unused;
    for (int i = 0; i < COUNT; i++) {
        madvise(fresh[i], BIG, MADV_POPULATE_WRITE);
        atomic_store(&prepared, i + 1);
    }
    return 0;
}
static void wait_for(atomic_long *v, long want) {
    long spins = 0;
    while (atomic_load_explicit(v, memory_order_acquire) != want) if (++spins % 256 == 0) sched_yield();
}
static double run(Line *l, char *region, char *src, long base, int ahead) {
    for (int i = 0; i < COUNT; i++) fresh[i] = mmap(0, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    atomic_store(&prepared, 0);
    pthread_t t;
    double start = now();
    if (ahead) pthread_create(&t, 0, prepare, 0);
    for (int i = 0; i < COUNT; i++) {
        memcpy(region, src, BIG);
        atomic_store_explicit(&l->req, base + i + 1, memory_order_release);
        wait_for(&l->rsp, base + i + 1);
        if (ahead) while (atomic_load(&prepared) <= i) sched_yield();
        memcpy(fresh[i], region, BIG);
    }
    double seconds = now() - start;
    if (ahead) pthread_join(t, 0);
    for (int i = 0; i < COUNT; i++) munmap(fresh[i], BIG);
    return 2.0 * COUNT * BIG / seconds / 1e9;
}
int main(void) {
    Line *l = mmap(0, sizeof(Line), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *region = mmap(0, BIG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *src = malloc(BIG);
    memset(src, 7, BIG); memset(region, 0, BIG);
    pid_t pid = fork();
    if (pid == 0) {
        char *mine = malloc(BIG); memset(mine, 0, BIG);
        for (long i = 1; i <= 2 * COUNT; i++) {
            wait_for(&l->req, i);
            memcpy(mine, region, BIG); memcpy(region, mine, BIG);
            atomic_store_explicit(&l->rsp, i, memory_order_release);
        }
        _exit(0);
    }
    double faulted = run(l, region, src, 0, 0);
    double prepared_ahead = run(l, region, src, COUNT, 1);
    waitpid(pid, 0, 0);
    printf("{\"fresh_echo_GBps\": %.2f, \"fresh_echo_prepared_GBps\": %.2f}\n", faulted, prepared_ahead);
    return 0;
}
