// file_copy.h: copying one file, the heart of sparsecp.
#pragma once
#include <sys/types.h>

#include <compare>
#include <map>
#include <string>

namespace sparsecp {

enum class SparseMode { Auto, Always, Never };
enum class ReflinkMode { Auto, Always, Never };

struct CopyOptions {
  SparseMode mode = SparseMode::Auto;
  ReflinkMode reflink = ReflinkMode::Auto;
  bool verbose = false;
};

// A file as the kernel knows it.
struct FileId {
  dev_t dev;
  ino_t ino;
  auto operator<=>(const FileId &) const = default;
};

// The regular files this run has written, each with the source it was
// copied from: cp's rules for several sources that meet at one destination.
// Lookups are O(log n), so many operands stay cheap.
class RunLog {
 public:
  const FileId *source_of(const FileId &dst) const {
    auto it = created_.find(dst);
    return it == created_.end() ? nullptr : &it->second;
  }
  void add(const FileId &dst, const FileId &src) { created_[dst] = src; }

 private:
  std::map<FileId, FileId> created_;
};

enum class Outcome {
  Copied,
  Duplicate,  // SRC was copied to DST earlier in this run: nothing done
};

// Copies the file SRC to the path DST (never a directory: the caller has
// already appended the base name). Refuses, before truncating anything, to
// copy a file onto itself, to overwrite a directory, or to overwrite a file
// this run created from another source. Throws CopyError with the message
// to print.
Outcome copy_file(const std::string &src, const std::string &dst, const CopyOptions &opt, RunLog &log);

}  // namespace sparsecp
