// options.cc: see options.h.
#include "options.h"

#include <getopt.h>

#include <cstdio>
#include <cstring>

namespace sparsecp {

namespace {

constexpr const char* kHelp = R"(NAME
    sparsecp - copy files and keep their holes

SYNOPSIS
    sparsecp [OPTION]... SRC DST
    sparsecp [OPTION]... SRC... DIR

DESCRIPTION
    Copies SRC to DST, or each SRC into the directory DIR under its base
    name. The copy has the same bytes and the same size as the source. The
    holes of a sparse source are found with lseek(2) SEEK_DATA/SEEK_HOLE and
    are never read; they stay holes in the copy, also at the end of the
    file. Data extents are copied with copy_file_range(2) where the kernel
    allows it, otherwise with read(2)/write(2).

    Where the file system does not report holes, a source whose allocated
    blocks are fewer than its size needs is read and its all-zero blocks
    (aligned to the destination's block size) become holes.

    A pipe, a device or any other non-regular destination receives real
    zeros for the holes. Files whose size says 0 (/proc, /sys) and pipes
    are read until end of file.

    A file is never copied onto itself (same device and inode, also through
    hard or symbolic links): this is checked before anything is truncated.

OPTIONS
    --sparse=WHEN
        auto    (default) holes of the source stay holes; zeros stored as
                data stay data.
        always  also turn every all-zero block into a hole.
        never   write every byte, holes as zeros (a fully allocated copy,
                e.g. for a swap file).
    -v, --verbose
        Print, per file, how it was copied: runs of data (extents), bytes
        of data, bytes of holes, how holes were found and how data moved.
    -h, --help
        Print this help and exit.
    --version
        Print the version and exit.

EXIT STATUS
    0   every file was copied.
    1   some file could not be copied (missing source, same file, read or
        write error such as ENOSPC or EIO); the others were still copied.
    2   bad option, bad --sparse argument, missing operand, or several
        sources with a target that is not a directory.

EXAMPLES
    truncate -s 1T disk.img && sparsecp disk.img copy.img
        Copies a 1 TiB hole in well under a second; du shows 0 for both.
    sparsecp --sparse=always -v dense.img sparse.img
        Digs holes where dense.img stores zeros and says how much.
    sparsecp --sparse=never swap.sparse swapfile
        A fully allocated copy.
    sparsecp image.raw /dev/stdout | gzip > image.raw.gz
        A pipe receives the holes as zeros.
)";

bool parse_mode(const char* arg, SparseMode& mode) {
  if (std::strcmp(arg, "auto") == 0) mode = SparseMode::Auto;
  else if (std::strcmp(arg, "always") == 0) mode = SparseMode::Always;
  else if (std::strcmp(arg, "never") == 0) mode = SparseMode::Never;
  else return false;
  return true;
}

enum LongOnly { kSparse = 256, kVersion };

const struct option kLongOptions[] = {
    {"sparse", required_argument, nullptr, kSparse},
    {"verbose", no_argument, nullptr, 'v'},
    {"help", no_argument, nullptr, 'h'},
    {"version", no_argument, nullptr, kVersion},
    {nullptr, 0, nullptr, 0},
};

// Handles one option; false on a usage error (already printed).
bool apply_option(int c, Command& cmd) {
  switch (c) {
    case kSparse:
      if (parse_mode(optarg, cmd.copy.mode)) return true;
      usage_error(std::string("invalid argument '") + optarg + "' for '--sparse'\n" +
                  "Valid arguments are: 'auto', 'always', 'never'");
      return false;
    case 'v': cmd.copy.verbose = true; return true;
    case 'h': cmd.help = true; return true;
    case kVersion: cmd.version = true; return true;
    default:  // getopt already said what is wrong
      usage_error("");
      return false;
  }
}

}  // namespace

int usage_error(const std::string& msg) {
  if (!msg.empty()) std::fprintf(stderr, "sparsecp: %s\n", msg.c_str());
  std::fprintf(stderr, "Try 'sparsecp --help' for more information.\n");
  return kExitUsage;
}

bool parse_command(int argc, char** argv, Command& cmd) {
  opterr = 1;
  static char prog[] = "sparsecp";
  if (argc > 0) argv[0] = prog;  // getopt's own messages name the tool
  int c;
  while ((c = getopt_long(argc, argv, "vh", kLongOptions, nullptr)) != -1)
    if (!apply_option(c, cmd)) return false;
  for (int i = optind; i < argc; ++i) cmd.operands.emplace_back(argv[i]);
  return true;
}

void print_help() { std::fputs(kHelp, stdout); }

void print_version() { std::puts("sparsecp (spanalloc tools) 0.1.0"); }

}  // namespace sparsecp
