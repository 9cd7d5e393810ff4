// file_copy.h: copying one file, the heart of sparsecp.
#pragma once
#include <string>

namespace sparsecp {

enum class SparseMode { Auto, Always, Never };

struct CopyOptions {
  SparseMode mode = SparseMode::Auto;
  bool verbose = false;
};

// Copies the file SRC to the path DST (never a directory: the caller has
// already appended the base name). Refuses to copy a file onto itself
// before truncating anything. Throws CopyError with the message to print.
void copy_file(const std::string& src, const std::string& dst, const CopyOptions& opt);

}  // namespace sparsecp
