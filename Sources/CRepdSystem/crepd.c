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

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <linux/loop.h>
#include <linux/netlink.h>

int crepd_socketpair_stream(int fds[2]) { return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds); }
unsigned int crepd_major(uint64_t dev) { return major((dev_t)dev); }
unsigned int crepd_minor(uint64_t dev) { return minor((dev_t)dev); }

int crepd_block_device_number(const char *path, uint64_t *dev) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    if (!S_ISBLK(st.st_mode)) { errno = ENOTBLK; return -1; }
    *dev = (uint64_t)st.st_rdev;
    return 0;
}

int crepd_blk_set_readonly(int fd, int readonly) { return ioctl(fd, BLKROSET, &readonly); }
int crepd_blk_get_readonly(int fd, int *readonly) { return ioctl(fd, BLKROGET, readonly); }
int crepd_blk_flush_buffers(int fd) { return ioctl(fd, BLKFLSBUF, 0); }
int crepd_blk_size(int fd, uint64_t *bytes) { return ioctl(fd, BLKGETSIZE64, bytes); }

int crepd_loop_get_free(int control_fd) { return ioctl(control_fd, LOOP_CTL_GET_FREE); }

static void crepd_loop_info(struct loop_info64 *info, uint32_t flags, const char *name) {
    memset(info, 0, sizeof *info);
    info->lo_flags = flags;
    if (name) strncpy((char *)info->lo_file_name, name, LO_NAME_SIZE - 1);
}

int crepd_loop_configure(int loop_fd, int backing_fd, uint32_t flags, uint32_t block_size, const char *name) {
#ifdef LOOP_CONFIGURE
    struct loop_config config;
    memset(&config, 0, sizeof config);
    config.fd = (uint32_t)backing_fd;
    config.block_size = block_size;
    crepd_loop_info(&config.info, flags, name);
    return ioctl(loop_fd, LOOP_CONFIGURE, &config);
#else
    (void)loop_fd; (void)backing_fd; (void)flags; (void)block_size; (void)name;
    errno = ENOTTY;
    return -1;
#endif
}

int crepd_loop_set_fd(int loop_fd, int backing_fd) { return ioctl(loop_fd, LOOP_SET_FD, backing_fd); }
int crepd_loop_set_status(int loop_fd, uint32_t flags, const char *name) {
    struct loop_info64 info;
    crepd_loop_info(&info, flags, name);
    return ioctl(loop_fd, LOOP_SET_STATUS64, &info);
}
int crepd_loop_clear(int loop_fd) { return ioctl(loop_fd, LOOP_CLR_FD, 0); }
uint32_t crepd_lo_flags_autoclear(void) { return LO_FLAGS_AUTOCLEAR; }
uint32_t crepd_lo_flags_direct_io(void) { return LO_FLAGS_DIRECT_IO; }

int crepd_netlink_generic_socket(int timeout_ms) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
    if (fd < 0) return -1;
    struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_nl local;
    memset(&local, 0, sizeof local);
    local.nl_family = AF_NETLINK;
    if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

#include <spawn.h>
int crepd_spawn_close_from(void *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np((posix_spawn_file_actions_t *)actions, lowest);
}
int crepd_set_cloexec(int fd) {
    int flags = fcntl(fd, F_GETFD);
    return flags < 0 ? -1 : fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

int crepd_umount_lazy(const char *path) { return umount2(path, MNT_DETACH); }
