#ifndef SAFETUNE_CBLAS_SHIM_H
#define SAFETUNE_CBLAS_SHIM_H
/* OpenBLAS's cblas.h also declares openblas_set_num_threads and openblas_get_config. */
#include <cblas.h>
#endif
