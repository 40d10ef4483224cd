#ifndef MODELCACHE_CLINUXIO_SHIM_H
#define MODELCACHE_CLINUXIO_SHIM_H

/// sync_file_range(2) is declared by <fcntl.h> only under _GNU_SOURCE, which the Glibc module Swift imports is not
/// built with; its prototype is stated here (off64_t is `long` on every 64-bit Linux ABI Swift supports).
extern int sync_file_range(int fd, long offset, long nbytes, unsigned int flags);

/// Starts write-back of a file range (SYNC_FILE_RANGE_WRITE = 2) without waiting for it: a later fsync then finds
/// most pages clean. Returns 0 or -1 with errno set (EINVAL, ESPIPE, ENOSYS where a file system cannot).
static inline int modelcache_start_writeback(int fd, long offset, long nbytes) {
    return sync_file_range(fd, offset, nbytes, 2u);
}
#endif
