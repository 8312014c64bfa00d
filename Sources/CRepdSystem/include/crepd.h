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

// Block devices, loop devices, the kernel's nbd driver (issue 15: `repd up` attaches a device).
/// A connected pair of unix stream sockets, close-on-exec.
int crepd_socketpair_stream(int fds[2]);
unsigned int crepd_major(uint64_t dev);
unsigned int crepd_minor(uint64_t dev);
/// st_rdev of a block device node (follows symlinks); -1 with errno if it is not one.
int crepd_block_device_number(const char *path, uint64_t *dev);
/// BLKROSET / BLKROGET / BLKFLSBUF / BLKGETSIZE64.
int crepd_blk_set_readonly(int fd, int readonly);
int crepd_blk_get_readonly(int fd, int *readonly);
int crepd_blk_flush_buffers(int fd);
int crepd_blk_size(int fd, uint64_t *bytes);
/// LOOP_CTL_GET_FREE on /dev/loop-control: a free loop index, or -1.
int crepd_loop_get_free(int control_fd);
/// LOOP_CONFIGURE (Linux 5.8+): binds backing_fd with the flags (LO_FLAGS_*), logical block size and a
/// name shown in /sys/block/loopN/loop/backing_file's neighbour lo_file_name.
int crepd_loop_configure(int loop_fd, int backing_fd, uint32_t flags, uint32_t block_size, const char *name);
/// The older two-step form: LOOP_SET_FD then LOOP_SET_STATUS64.
int crepd_loop_set_fd(int loop_fd, int backing_fd);
int crepd_loop_set_status(int loop_fd, uint32_t flags, const char *name);
int crepd_loop_clear(int loop_fd);
uint32_t crepd_lo_flags_autoclear(void);
uint32_t crepd_lo_flags_direct_io(void);
/// A NETLINK_GENERIC socket, close-on-exec, with a receive timeout.
int crepd_netlink_generic_socket(int timeout_ms);
/// posix_spawn_file_actions_addclosefrom_np: the child closes every descriptor from `lowest` on.
int crepd_spawn_close_from(void *actions, int lowest);
/// Sets FD_CLOEXEC on a descriptor.
int crepd_set_cloexec(int fd);
/// umount2(path, MNT_DETACH).
int crepd_umount_lazy(const char *path);
#endif
