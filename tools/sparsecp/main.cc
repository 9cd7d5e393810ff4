// main.cc: sparsecp's entry point: operands to (source, destination) pairs.
#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <vector>

#include "error.h"
#include "file_copy.h"
#include "options.h"

using namespace sparsecp;

namespace {

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The last component of PATH, ignoring trailing slashes.
std::string base_name(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string join(const std::string& dir, const std::string& name) {
  return !dir.empty() && dir.back() == '/' ? dir + name : dir + "/" + name;
}

// Copies one pair; prints the error and returns false on failure.
bool copy_one(const std::string& src, const std::string& dst, const CopyOptions& opt) {
  try {
    copy_file(src, dst, opt);
    return true;
  } catch (const CopyError& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "sparsecp: %s\n", e.what());
    return false;
  }
}

int run(const Command& cmd) {
  const std::vector<std::string>& ops = cmd.operands;
  if (ops.empty()) return usage_error("missing file operand");
  if (ops.size() == 1)
    return usage_error("missing destination file operand after '" + ops[0] + "'");
  const std::string& target = ops.back();
  bool into_dir = is_directory(target);
  if (ops.size() > 2 && !into_dir)
    return usage_error("target '" + target + "' is not a directory");
  bool ok = true;
  for (size_t i = 0; i + 1 < ops.size(); ++i) {
    std::string dst = into_dir ? join(target, base_name(ops[i])) : target;
    ok = copy_one(ops[i], dst, cmd.copy) && ok;
  }
  return ok ? kExitOk : kExitFailure;
}

}  // namespace

int main(int argc, char** argv) {
  Command cmd;
  if (!parse_command(argc, argv, cmd)) return kExitUsage;
  if (cmd.help) {
    print_help();
    return kExitOk;
  }
  if (cmd.version) {
    print_version();
    return kExitOk;
  }
  return run(cmd);
}
