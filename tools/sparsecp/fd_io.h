// fd_io.h: read and write loops that survive EINTR and short transfers.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <string>

namespace sparsecp {

// Reads up to n bytes at off (pread) or at the current position (off < 0,
// read). Retries on EINTR; returns 0 at end of file; throws on errors.
size_t read_some(int fd, char *buf, size_t n, off_t off, const std::string &name);

// Writes all n bytes at off (pwrite) or at the current position (off < 0,
// write), looping over short writes and EINTR; throws on errors.
void write_all(int fd, const char *buf, size_t n, off_t off, const std::string &name);

// Writes len zero bytes, like write_all.
void write_zeros(int fd, off_t len, off_t off, const std::string &name);

// True when all n bytes of buf are zero.
bool all_zero(const char *buf, size_t n);

}  // namespace sparsecp
