// sink.cc: see sink.h.
#include "sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "error.h"
#include "fd_io.h"

namespace sparsecp {

Sink::Sink(int fd, std::string name, bool keep_holes, bool positional)
    : fd_(fd), name_(std::move(name)), keep_holes_(keep_holes), positional_(positional) {}

void Sink::data(const char *buf, size_t n, off_t off) {
  if (n == 0) return;
  flush_hole();
  if (!keep_holes_) fill_to(off);
  write_all(fd_, buf, n, positional_ ? off : -1, name_);
  note_data(off, n);
}

void Sink::wrote(off_t off, size_t n) {
  flush_hole();
  note_data(off, n);
}

void Sink::note_data(off_t off, size_t n) {
  if (off != data_end_) ++runs_;
  data_bytes_ += n;
  data_end_ = pos_ = off + static_cast<off_t>(n);
}

void Sink::hole(off_t off, off_t len) {
  if (len <= 0 || !keep_holes_) return;  // zeros are written lazily by fill_to
  if (hole_end_ == off && hole_end_ > hole_start_) {
    hole_end_ = off + len;  // extends the pending hole
    return;
  }
  flush_hole();
  hole_start_ = off;
  hole_end_ = off + len;
}

void Sink::flush_hole() {
  if (hole_end_ <= hole_start_) return;
  off_t len = hole_end_ - hole_start_;
  int r = ::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, hole_start_, len);
  hole_start_ = hole_end_ = 0;
  // File systems without hole punching still read the skipped range as zeros.
  if (r != 0 && errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL) fail("error deallocating", name_, errno);
}

void Sink::fill_to(off_t off) {
  if (off <= pos_) return;
  write_zeros(fd_, off - pos_, positional_ ? pos_ : -1, name_);
  pos_ = off;
}

void Sink::finish(off_t size) {
  flush_hole();
  if (!keep_holes_) fill_to(size);
  if (!positional_) return;  // never truncate a pipe or a device
  if (::ftruncate(fd_, size) != 0) fail("failed to extend", name_, errno);
}

}  // namespace sparsecp
