// Linux calls that Glibc's Swift module hides behind _GNU_SOURCE.
#ifndef CREPD_H
#define CREPD_H
#include <stdint.h>
#include <sys/types.h>

int crepd_fallocate(int fd, int mode, int64_t offset, int64_t length);
int64_t crepd_seek_data(int fd, int64_t offset);
int64_t crepd_seek_hole(int fd, int64_t offset);
int crepd_o_direct(void);
int crepd_getrandom(void *buf, size_t len);
int crepd_pipe_cloexec(int fds[2]);
/// pread that never waits for the disk (preadv2 with RWF_NOWAIT): -1 with EAGAIN when the data
/// is not in the page cache.
int64_t crepd_pread_nowait(int fd, void *buf, size_t len, int64_t offset);
/// Caps glibc's malloc arenas (one per thread by default, each keeping its own free memory).
void crepd_limit_malloc_arenas(int count);
#endif
