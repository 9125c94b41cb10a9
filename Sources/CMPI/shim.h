// Open MPI's handles (`MPI_COMM_WORLD`, `MPI_BYTE`, `MPI_STATUS_IGNORE`, …) are macros over global
// symbols that Swift cannot import; these accessors hand them to the cluster transport. Only the
// calls it makes are here. Built only with the package's `MPI` trait.
//
// Also the node's wake-up words (see NodeWakeup.swift): one 32-bit word per rank of a node, in an
// MPI shared-memory window every rank of the node maps, that a rank sleeps on (a futex) and the
// node's other ranks wake it through after sending it a message.
#ifndef CMP_MPI_SHIM_H
#define CMP_MPI_SHIM_H

#include <errno.h>
#include <mpi.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

// linux/futex.h's operations and a timespec of the same layout, spelled here: the headers that
// define them would become this module's, and their types clash with Glibc's in Swift.
#define CMP_FUTEX_WAIT 0
#define CMP_FUTEX_WAKE 1
struct cmp_wake_timespec {
    long seconds;
    long nanoseconds;
};

static inline MPI_Comm cmp_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype cmp_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Status *cmp_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Errhandler cmp_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Request cmp_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Message cmp_mpi_message_null(void) { return MPI_MESSAGE_NULL; }
static inline int cmp_mpi_any_source(void) { return MPI_ANY_SOURCE; }
static inline int cmp_mpi_any_tag(void) { return MPI_ANY_TAG; }
static inline int cmp_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int cmp_mpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int cmp_mpi_success(void) { return MPI_SUCCESS; }
static inline int cmp_mpi_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }
/// How many ranks of the world share this rank's node (its shared-memory domain), or -1.
static inline int cmp_mpi_ranks_on_node(void) {
    MPI_Comm node;
    int size = -1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) != MPI_SUCCESS) return -1;
    MPI_Comm_size(node, &size);
    MPI_Comm_free(&node);
    return size;
}
/// Whether a message with `tag` from any rank has arrived (without matching it); -1 on an error.
static inline int cmp_mpi_iprobe(int tag) {
    int flag = 0;
    if (MPI_Iprobe(MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS) return -1;
    return flag;
}

/// Bytes between two ranks' wake-up words (a cache line each: a rank's word is written by the
/// ranks waking it, not its neighbours').
#define CMP_WAKE_STRIDE 64

/// Maps the wake-up words of this node's ranks: collective over the world (every rank calls it,
/// once, after MPI_Init). Fills `word_of_rank[r]` (room for the world's size) with world rank r's
/// word when r shares this node, else NULL. Returns 0, or -1 when MPI gives no shared window (every
/// entry is NULL then: ranks poll). The window lives until MPI_Finalize.
static inline int cmp_mpi_node_wake_words(unsigned int **word_of_rank) {
    int world_rank = 0, world_size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    for (int r = 0; r < world_size; r++) word_of_rank[r] = NULL;
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) != MPI_SUCCESS) return -1;
    int node_rank = 0, node_size = 0;
    MPI_Comm_rank(node, &node_rank);
    MPI_Comm_size(node, &node_size);
    int *world_ranks = malloc(sizeof(int) * (size_t)node_size);
    if (world_ranks == NULL) return -1;
    int failed = MPI_Allgather(&world_rank, 1, MPI_INT, world_ranks, 1, MPI_INT, node) != MPI_SUCCESS;
    char *base = NULL;
    MPI_Win window;
    // Node rank 0 allocates every word (zeros: awake); the others map its part.
    MPI_Aint size = node_rank == 0 ? (MPI_Aint)node_size * CMP_WAKE_STRIDE : 0;
    if (!failed && MPI_Win_allocate_shared(size, 1, MPI_INFO_NULL, node, &base, &window) != MPI_SUCCESS) failed = 1;
    MPI_Aint got = 0;
    int unit = 0;
    if (!failed && MPI_Win_shared_query(window, 0, &got, &unit, &base) != MPI_SUCCESS) failed = 1;
    if (!failed && got < (MPI_Aint)node_size * CMP_WAKE_STRIDE) failed = 1;
    if (!failed) {
        if (node_rank == 0) {
            for (int i = 0; i < node_size; i++) __atomic_store_n((unsigned int *)(base + i * CMP_WAKE_STRIDE), 0, __ATOMIC_SEQ_CST);
        }
        // Every word is zero before any rank uses one.
        if (MPI_Barrier(node) != MPI_SUCCESS) failed = 1;
    }
    if (!failed) {
        for (int i = 0; i < node_size; i++) {
            int r = world_ranks[i];
            if (r >= 0 && r < world_size) word_of_rank[r] = (unsigned int *)(base + i * CMP_WAKE_STRIDE);
        }
    }
    free(world_ranks);
    MPI_Comm_free(&node);
    return failed ? -1 : 0;
}

// A word says 0: its rank polls (its MPI thread is awake); 1: it sleeps, wake it after sending
// it something; 2: another thread of the rank polls in its MPI thread's place (a borrower of the
// MPI role), while the MPI thread parks (sleeps while the word says 2): no need to wake it.

/// Marks the rank owning `word` as about to sleep. Sequentially consistent: a waker's check
/// after its send, and the sleeper's last look for messages after this, cannot both miss.
static inline void cmp_wake_word_sleeping(unsigned int *word) { __atomic_store_n(word, 1, __ATOMIC_SEQ_CST); }

/// Marks the rank owning `word` awake.
static inline void cmp_wake_word_awake(unsigned int *word) { __atomic_store_n(word, 0, __ATOMIC_RELAXED); }

/// Sleeps on `word` while it says sleeping, for at most `timeout_us`. Returns 1 when woken (or
/// the word had changed already), 0 when the time ran out.
static inline int cmp_wake_word_wait(unsigned int *word, long timeout_us) {
    struct cmp_wake_timespec timeout = {timeout_us / 1000000L, (timeout_us % 1000000L) * 1000L};
    long result = syscall(SYS_futex, word, CMP_FUTEX_WAIT, 1, &timeout, NULL, 0);
    return result == 0 || errno != ETIMEDOUT;
}

/// Marks the rank owning `word` as polled by a borrower of its MPI role.
static inline void cmp_wake_word_polled(unsigned int *word) { __atomic_store_n(word, 2, __ATOMIC_RELAXED); }

/// Whether `word` says a borrower polls for its rank.
static inline int cmp_wake_word_is_polled(unsigned int *word) { return __atomic_load_n(word, __ATOMIC_RELAXED) == 2; }

/// Sleeps on `word` while it says a borrower polls (the rank's senders do not wake it then), for
/// at most `timeout_us`; returns at once when it says anything else (the borrower is done, and
/// marked the rank asleep; a sender may have woken it since), or on a wake-up.
static inline void cmp_wake_word_park(unsigned int *word, long timeout_us) {
    struct cmp_wake_timespec timeout = {timeout_us / 1000000L, (timeout_us % 1000000L) * 1000L};
    syscall(SYS_futex, word, CMP_FUTEX_WAIT, 2, &timeout, NULL, 0);
}

/// Wakes the rank owning `word` if it sleeps (a look at the word; a system call only then).
/// Returns 1 when it did.
static inline int cmp_wake_word_poke(unsigned int *word) {
    // What was sent before is visible before the word is read (the other half of the sleeper's
    // store, then look).
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    // Only a sleeping rank (1): one that polls (0), or whose borrower polls (2), sees the message.
    if (__atomic_load_n(word, __ATOMIC_RELAXED) != 1) return 0;
    unsigned int sleeping = 1;
    if (!__atomic_compare_exchange_n(word, &sleeping, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return 0;
    syscall(SYS_futex, word, CMP_FUTEX_WAKE, 1, NULL, NULL, 0);
    return 1;
}

/// The calling thread, as a number no other live thread has (never 0): the holder of the MPI role.
static inline unsigned long cmp_thread_id(void) { return (unsigned long)pthread_self() | 1UL; }

static inline int cmp_mpi_status_source(const MPI_Status *status) { return status->MPI_SOURCE; }
static inline int cmp_mpi_status_tag(const MPI_Status *status) { return status->MPI_TAG; }

#endif
