// fd_io.cc: see fd_io.h.
#include "fd_io.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "error.h"

namespace sparsecp {

namespace {
constexpr size_t kZeroChunk = 128 * 1024;
const char kZeros[kZeroChunk] = {};
}  // namespace

size_t read_some(int fd, char *buf, size_t n, off_t off, const std::string &name) {
  for (;;) {
    ssize_t r = off >= 0 ? ::pread(fd, buf, n, off) : ::read(fd, buf, n);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno != EINTR) fail("error reading", name, errno);
  }
}

void write_all(int fd, const char *buf, size_t n, off_t off, const std::string &name) {
  while (n > 0) {
    ssize_t w = off >= 0 ? ::pwrite(fd, buf, n, off) : ::write(fd, buf, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail("error writing", name, errno);
    if (w == 0) fail("error writing", name, ENOSPC);  // no progress: treat as full
    buf += w;
    n -= static_cast<size_t>(w);
    if (off >= 0) off += w;
  }
}

void write_zeros(int fd, off_t len, off_t off, const std::string &name) {
  while (len > 0) {
    size_t n = static_cast<size_t>(std::min<off_t>(len, kZeroChunk));
    write_all(fd, kZeros, n, off, name);
    len -= static_cast<off_t>(n);
    if (off >= 0) off += static_cast<off_t>(n);
  }
}

bool all_zero(const char *buf, size_t n) {
  // Compare with the zero page in large steps, then the rest.
  while (n >= kZeroChunk) {
    if (std::memcmp(buf, kZeros, kZeroChunk) != 0) return false;
    buf += kZeroChunk;
    n -= kZeroChunk;
  }
  return n == 0 || std::memcmp(buf, kZeros, n) == 0;
}

}  // namespace sparsecp
