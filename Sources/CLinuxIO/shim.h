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

#include <pthread.h>

/// pthread_setname_np(3), also declared only under _GNU_SOURCE.
extern int pthread_setname_np(pthread_t thread, const char *name);

/// Names the calling thread in the kernel (what gdb, `top -H` and /proc/PID/task/TID/comm show; 15 bytes kept).
/// Foundation's `Thread.name` does not reach the kernel on Linux: a thread kept its creator's name.
static inline int modelcache_name_this_thread(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}
#endif
