/* fault_shim.c: an LD_PRELOAD library that makes the kernel look harsher
 * to sparsecp, so the tests can prove its loops and fallbacks. Knobs
 * (environment variables, all optional):
 *   FAULT_SHORT=1            read/write/pread/pwrite/copy_file_range move at
 *                            most half of what was asked (at least 1 byte)
 *   FAULT_EINTR=1            every other such call first fails with EINTR
 *   FAULT_CFR=ERR            copy_file_range fails with ERR (EXDEV, EINVAL,
 *                            ENOSYS, EOPNOTSUPP, EPERM, ETXTBSY, EBADF, EIO)
 *                            or returns 0 (ZERO)
 *   FAULT_SEEK=ERR           lseek SEEK_DATA/SEEK_HOLE fail with ERR
 *                            (EINVAL, EOPNOTSUPP), or TRIVIAL: the whole file
 *                            is reported as data (no holes)
 *   FAULT_WRITE_EIO_AFTER=N  writes to descriptors > 2 fail with EIO once N
 *                            bytes were written
 *   FAULT_RESIZE_PATH=P      once N bytes (FAULT_RESIZE_AFTER) were read or
 *   FAULT_RESIZE_AFTER=N     moved by copy_file_range, truncate(2) file P to
 *   FAULT_RESIZE_TO=S        S bytes: a source that shrinks or grows while
 *                            it is copied
 *   FAULT_LOG=PATH           at exit, append "eintr=N short=N cfr=N
 *                            cfr_fail=N seek_fail=N read_bytes=N cfr_bytes=N"
 *                            to PATH (bytes read from descriptors > 2, bytes
 *                            moved by copy_file_range)
 * Real calls go straight to syscall(2), so nothing here recurses. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static long n_eintr, n_short, n_cfr, n_cfr_fail, n_seek_fail;
static long long n_written, n_read, n_cfr_bytes;

static const char *knob(const char *name) { return getenv(name); }

static int errno_named(const char *s) {
  static const struct { const char *name; int err; } table[] = {
      {"EXDEV", EXDEV},     {"EINVAL", EINVAL},   {"ENOSYS", ENOSYS}, {"EOPNOTSUPP", EOPNOTSUPP},
      {"EPERM", EPERM},     {"ETXTBSY", ETXTBSY}, {"EBADF", EBADF},   {"EIO", EIO},
      {"ENOSPC", ENOSPC},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; ++i)
    if (strcmp(s, table[i].name) == 0) return table[i].err;
  return EINVAL;
}

/* 1 when this call should fail with EINTR (every other call). */
static int inject_eintr(void) {
  static int flip;
  if (!knob("FAULT_EINTR")) return 0;
  flip = !flip;
  if (flip) { ++n_eintr; errno = EINTR; }
  return flip;
}

static size_t shorten(size_t n) {
  if (!knob("FAULT_SHORT") || n < 2) return n;
  ++n_short;
  return n / 2;
}

static int write_fails(int fd) {
  const char *after = knob("FAULT_WRITE_EIO_AFTER");
  if (!after || fd <= 2 || n_written < atoll(after)) return 0;
  errno = EIO;
  return 1;
}

/* syscall(2) already returns -1 and sets errno on failure. */
static ssize_t done(long r) { return (ssize_t)r; }

static ssize_t count_written(int fd, ssize_t r) {
  if (r > 0 && fd > 2) n_written += r;
  return r;
}

static void maybe_resize(void) {
  static int done_once;
  const char *path = knob("FAULT_RESIZE_PATH");
  if (!path || done_once || n_read + n_cfr_bytes < atoll(knob("FAULT_RESIZE_AFTER") ?: "0"))
    return;
  done_once = 1;
  if (truncate(path, atoll(knob("FAULT_RESIZE_TO") ?: "0")) != 0) abort();
}

static ssize_t count_read(int fd, ssize_t r) {
  if (r > 0 && fd > 2) n_read += r;
  maybe_resize();
  return r;
}

ssize_t read(int fd, void *buf, size_t n) {
  if (inject_eintr()) return -1;
  return count_read(fd, done(syscall(SYS_read, fd, buf, shorten(n))));
}

ssize_t pread64(int fd, void *buf, size_t n, off_t off) {
  if (inject_eintr()) return -1;
  return count_read(fd, done(syscall(SYS_pread64, fd, buf, shorten(n), off)));
}

ssize_t pread(int fd, void *buf, size_t n, off_t off) { return pread64(fd, buf, n, off); }

ssize_t write(int fd, const void *buf, size_t n) {
  if (fd > 2 && inject_eintr()) return -1;
  if (write_fails(fd)) return -1;
  return count_written(fd, done(syscall(SYS_write, fd, buf, fd > 2 ? shorten(n) : n)));
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  if (inject_eintr()) return -1;
  if (write_fails(fd)) return -1;
  return count_written(fd, done(syscall(SYS_pwrite64, fd, buf, shorten(n), off)));
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) { return pwrite64(fd, buf, n, off); }

ssize_t copy_file_range(int in, off_t *off_in, int out, off_t *off_out, size_t n,
                        unsigned flags) {
  const char *cfr = knob("FAULT_CFR");
  ++n_cfr;
  if (inject_eintr()) return -1;
  if (cfr) {
    ++n_cfr_fail;
    if (strcmp(cfr, "ZERO") == 0) return 0;
    errno = errno_named(cfr);
    return -1;
  }
  if (write_fails(out)) return -1;
  ssize_t r = done(syscall(SYS_copy_file_range, in, off_in, out, off_out, shorten(n), flags));
  if (r > 0) n_cfr_bytes += r;
  maybe_resize();
  return count_written(out, r);
}

/* SEEK_DATA/SEEK_HOLE as a file system without hole reporting would answer. */
static off_t seek_fault(int fd, off_t off, int whence, const char *how) {
  ++n_seek_fail;
  if (strcmp(how, "TRIVIAL") != 0) {
    errno = errno_named(how);
    return -1;
  }
  off_t size = (off_t)syscall(SYS_lseek, fd, 0, SEEK_END);
  if (off >= size) { errno = ENXIO; return -1; }
  return (off_t)syscall(SYS_lseek, fd, whence == SEEK_DATA ? off : size, SEEK_SET);
}

off_t lseek64(int fd, off_t off, int whence) {
  const char *how = knob("FAULT_SEEK");
  if (how && (whence == SEEK_DATA || whence == SEEK_HOLE)) return seek_fault(fd, off, whence, how);
  return (off_t)done(syscall(SYS_lseek, fd, off, whence));
}

off_t lseek(int fd, off_t off, int whence) { return lseek64(fd, off, whence); }

__attribute__((destructor)) static void report(void) {
  const char *path = knob("FAULT_LOG");
  if (!path) return;
  FILE *f = fopen(path, "a");
  if (!f) return;
  fprintf(f, "eintr=%ld short=%ld cfr=%ld cfr_fail=%ld seek_fail=%ld read_bytes=%lld cfr_bytes=%lld\n",
          n_eintr, n_short, n_cfr, n_cfr_fail, n_seek_fail, n_read, n_cfr_bytes);
  fclose(f);
}
