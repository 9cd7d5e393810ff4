// sink.h: the destination of one copy.
//
// A regular destination that keeps holes gets them by not writing (and by
// punching the range, which defeats speculative preallocation on XFS); its
// size is set by ftruncate at the end, so a trailing hole is kept. Any
// other destination (pipe, character or block device, or a regular file
// with --sparse=never) gets real zeros for every hole, written in order.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace sparsecp {

class Sink {
 public:
  // keep_holes: leave holes unwritten (regular files only).
  // positional: use pwrite at absolute offsets (regular files only).
  Sink(int fd, std::string name, bool keep_holes, bool positional);

  void data(const char *buf, size_t n, off_t off);  // bytes at off
  void wrote(off_t off, size_t n);                  // someone else wrote them (copy_file_range)
  void hole(off_t off, off_t len);                  // [off, off+len) reads as zero
  void finish(off_t size);                          // final size; writes trailing zeros or truncates

  int fd() const { return fd_; }
  const std::string &name() const { return name_; }
  bool keeps_holes() const { return keep_holes_; }
  uint64_t data_bytes() const { return data_bytes_; }
  uint64_t runs() const { return runs_; }

 private:
  void note_data(off_t off, size_t n);
  void fill_to(off_t off);  // zeros from pos_ up to off (not keeping holes)
  void flush_hole();        // punch the pending hole, if any

  int fd_;
  std::string name_;
  bool keep_holes_;
  bool positional_;
  off_t pos_ = 0;         // end of the bytes written so far
  off_t data_end_ = -1;   // end of the last run of data
  off_t hole_start_ = 0;  // pending hole [hole_start_, hole_end_)
  off_t hole_end_ = 0;
  uint64_t data_bytes_ = 0;
  uint64_t runs_ = 0;  // contiguous runs of data written
};

}  // namespace sparsecp
