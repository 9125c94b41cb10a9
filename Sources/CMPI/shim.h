// Open MPI's handles (`MPI_COMM_WORLD`, `MPI_BYTE`, `MPI_STATUS_IGNORE`, …) are macros over global
// symbols that Swift cannot import; these accessors hand them to the cluster transport. Only the
// calls it makes are here. Built only with the package's `MPI` trait.
#ifndef CMP_MPI_SHIM_H
#define CMP_MPI_SHIM_H

#include <mpi.h>

static inline MPI_Comm cmp_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype cmp_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Status *cmp_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Errhandler cmp_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Request cmp_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Message cmp_mpi_message_null(void) { return MPI_MESSAGE_NULL; }
static inline int cmp_mpi_any_source(void) { return MPI_ANY_SOURCE; }
static inline int cmp_mpi_any_tag(void) { return MPI_ANY_TAG; }
static inline int cmp_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
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
static inline int cmp_mpi_status_source(const MPI_Status *status) { return status->MPI_SOURCE; }
static inline int cmp_mpi_status_tag(const MPI_Status *status) { return status->MPI_TAG; }

#endif
