#ifndef SAFETUNE_CHDF5_SHIM_H
#define SAFETUNE_CHDF5_SHIM_H
#include <hdf5.h>
#if defined(__linux__)
#include <sys/types.h>
#include <errno.h>

/* Reserves disk blocks for a file being written (HDF5 or not) without changing its size,
   so a full disk fails before the write instead of inside libhdf5 (AtomicFile.reserve).
   glibc declares fallocate only under _GNU_SOURCE, which Swift's Glibc module lacks.
   Returns 0, or the errno of the failure. */
extern int fallocate(int fd, int mode, off_t offset, off_t len);
static inline int st_reserve_blocks(int fd, long long bytes) {
    return fallocate(fd, 0x01 /* FALLOC_FL_KEEP_SIZE */, 0, (off_t)bytes) == 0 ? 0 : errno;
}
#else
static inline int st_reserve_blocks(int fd, long long bytes) { (void)fd; (void)bytes; return 0; }
#endif

/* HDF5 exposes these as macros over global ids that are set when the library
   initialises; Swift cannot import them, so they are wrapped here. */
static inline hid_t st_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t st_H5S_ALL(void) { return H5S_ALL; }
static inline hid_t st_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t st_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t st_H5T_NATIVE_INT8(void) { return H5T_NATIVE_INT8; }
static inline hid_t st_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t st_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t st_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t st_H5T_C_S1(void) { return H5T_C_S1; }
static inline hid_t st_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline unsigned st_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned st_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned st_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline size_t st_H5T_VARIABLE(void) { return H5T_VARIABLE; }

/* File (on-disk) types: little-endian regardless of the writing machine. */
static inline hid_t st_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t st_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t st_H5T_STD_I8LE(void) { return H5T_STD_I8LE; }
static inline hid_t st_H5T_STD_U8LE(void) { return H5T_STD_U8LE; }
static inline hid_t st_H5T_STD_I32LE(void) { return H5T_STD_I32LE; }
static inline hid_t st_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }

/* Number of attributes on an object; H5Oget_info is a versioned macro, so the
   choice of function is made here, in C. Returns -1 on failure. */
static inline long long st_H5_attribute_count(hid_t obj) {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    if (H5Oget_info3(obj, &info, H5O_INFO_NUM_ATTRS) < 0) return -1;
#else
    H5O_info_t info;
    if (H5Oget_info2(obj, &info, H5O_INFO_NUM_ATTRS) < 0) return -1;
#endif
    return (long long)info.num_attrs;
}

/* Silence HDF5's own stderr traces: SafeTune reports errors itself. */
static inline void st_H5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
#endif
