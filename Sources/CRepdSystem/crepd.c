#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <malloc.h>
#include "crepd.h"

int crepd_fallocate(int fd, int mode, int64_t offset, int64_t length) { return fallocate(fd, mode, offset, length); }
int64_t crepd_seek_data(int fd, int64_t offset) { return lseek(fd, offset, SEEK_DATA); }
int64_t crepd_seek_hole(int fd, int64_t offset) { return lseek(fd, offset, SEEK_HOLE); }
int crepd_o_direct(void) { return O_DIRECT; }
int crepd_getrandom(void *buf, size_t len) { return (int)getrandom(buf, len, 0); }
int crepd_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
int64_t crepd_pread_nowait(int fd, void *buf, size_t len, int64_t offset) {
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    return preadv2(fd, &iov, 1, offset, RWF_NOWAIT);
}
void crepd_limit_malloc_arenas(int count) { mallopt(M_ARENA_MAX, count); }
