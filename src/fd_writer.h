// FdWriter: text output to a file descriptor through a stack buffer, with
// write(2) only: never allocates, never takes a lock, so it is safe in a
// signal handler and inside malloc (guard reports, heap profiles).
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace spanalloc {

class FdWriter {
 public:
  explicit FdWriter(int fd) : fd_(fd) {}
  ~FdWriter() { Flush(); }
  FdWriter(const FdWriter &) = delete;
  FdWriter &operator=(const FdWriter &) = delete;

  FdWriter &Str(const char *s) {
    while (*s) Put(*s++);
    return *this;
  }
  FdWriter &Bytes(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) Put(s[i]);
    return *this;
  }
  FdWriter &Dec(uint64_t v, int width = 0) {
    char d[20];
    int n = 0;
    do d[n++] = char('0' + v % 10); while ((v /= 10) != 0);
    for (int i = n; i < width; i++) Put(' ');
    while (n > 0) Put(d[--n]);
    return *this;
  }
  FdWriter &Hex(uint64_t v) {
    Str("0x");
    int shift = 60;
    while (shift > 0 && ((v >> shift) & 0xf) == 0) shift -= 4;
    for (; shift >= 0; shift -= 4) Put("0123456789abcdef"[(v >> shift) & 0xf]);
    return *this;
  }
  // Writes what is buffered; false once any write failed.
  bool Flush() {
    size_t off = 0;
    while (off < len_ && ok_) {
      ssize_t n = write(fd_, buf_ + off, len_ - off);
      if (n > 0) {
        off += size_t(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        ok_ = false;
      }
    }
    len_ = 0;
    return ok_;
  }
  bool ok() const { return ok_; }

 private:
  void Put(char c) {
    if (len_ == sizeof buf_) Flush();
    buf_[len_++] = c;
  }
  int fd_;
  bool ok_ = true;
  size_t len_ = 0;
  char buf_[512];
};

}  // namespace spanalloc
