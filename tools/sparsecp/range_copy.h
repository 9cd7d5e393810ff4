// range_copy.h: copying one range of the source into the sink.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <string>

#include "sink.h"

namespace sparsecp {

struct Source {
  int fd;
  std::string name;
  bool seekable;  // pread works; otherwise read() from the current position
};

// Copies [off, end) (end < 0: up to end of file) by reading. With
// make_holes, every all-zero piece between block-aligned offsets becomes a
// hole of the sink. Returns the offset reached: end, or the end of file if
// the source was shorter.
off_t copy_by_reading(const Source &src, Sink &sink, off_t off, off_t end, bool make_holes, size_t block);

// Copies [off, end) with copy_file_range. Returns the offset reached. When
// the kernel refuses (any error, or 0 bytes before end), sets usable to
// false and returns early: the caller goes on by reading, which also names
// the file in a real I/O error.
off_t copy_by_offload(const Source &src, Sink &sink, off_t off, off_t end, bool &usable);

}  // namespace sparsecp
