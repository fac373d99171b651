#ifndef SAFETUNE_CMPI_SHIM_H
#define SAFETUNE_CMPI_SHIM_H
/* Open MPI defines its handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE) as
   macros that cast addresses of library globals, which Swift cannot import: these
   functions return them. */
#include <mpi.h>

static inline MPI_Comm safetune_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype safetune_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype safetune_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Op safetune_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op safetune_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op safetune_mpi_min(void) { return MPI_MIN; }
static inline void *safetune_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Info safetune_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline int safetune_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
#endif
