// main.cc: sparsecp's entry point: operands to (source, destination) pairs,
// cp's rules for them, exit status.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <new>
#include <string>
#include <vector>

#include "common/cli.h"
#include "common/diag.h"
#include "common/std_streams.h"
#include "error.h"
#include "file_copy.h"
#include "options.h"

using namespace sparsecp;

namespace {

// The last component of PATH, ignoring trailing slashes.
std::string base_name(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string join(const std::string &dir, const std::string &name) {
  return !dir.empty() && dir.back() == '/' ? dir + name : dir + "/" + name;
}

// Copies one pair; prints the error and returns false on failure.
bool copy_one(const std::string &src, const std::string &dst, const CopyOptions &opt, RunLog &log) {
  try {
    if (copy_file(src, dst, opt, log) == Outcome::Duplicate)
      toolkit::warn("warning: source file " + quote(src) + " specified more than once");
    return true;
  } catch (const CopyError &e) {
    std::fflush(stdout);
    toolkit::warn(e.what());
    return false;
  }
}

int run(const Command &cmd) {
  const std::vector<std::string> &ops = cmd.operands;
  if (ops.empty()) throw toolkit::UsageError("missing file operand");
  if (ops.size() == 1) throw toolkit::UsageError("missing destination file operand after " + quote(ops[0]));
  const std::string &target = ops.back();
  struct stat st;
  int target_err = ::stat(target.c_str(), &st) == 0 ? 0 : errno;
  bool into_dir = target_err == 0 && S_ISDIR(st.st_mode);
  if (ops.size() > 2 && !into_dir)  // as cp: "target 'X': Not a directory"
    throw toolkit::UsageError("target " + quote(target) + ": " +
                              toolkit::errno_text(target_err ? target_err : ENOTDIR));
  RunLog log;
  bool ok = true;
  for (size_t i = 0; i + 1 < ops.size(); ++i) {
    std::string dst = into_dir ? join(target, base_name(ops[i])) : target;
    ok = copy_one(ops[i], dst, cmd.copy, log) && ok;
  }
  return ok ? kExitOk : kExitFailure;
}

}  // namespace

int main(int argc, char **argv) {
  toolkit::set_program_name("sparsecp");
  if (!toolkit::ensure_std_fds()) return kExitFailure;
  try {
    Command cmd = parse_command(argc, argv);
    if (cmd.help) return print_help() ? kExitOk : kExitFailure;
    if (cmd.version) return toolkit::print_version();
    int status = run(cmd);
    // A -v report that did not reach standard output is a failure too.
    return toolkit::flush_stdout() ? status : kExitFailure;
  } catch (const toolkit::UsageError &e) {
    return toolkit::usage_error(e.what());
  } catch (const std::bad_alloc &) {
    toolkit::warn("memory exhausted");
    return kExitFailure;
  }
}
