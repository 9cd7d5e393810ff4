// options.cc: see options.h.
#include "options.h"

#include <cstring>

#include "common/cli.h"
#include "common/diag.h"
#include "common/std_streams.h"

namespace sparsecp {

namespace {

constexpr const char *kHelp = R"(NAME
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
    allows it, otherwise with read(2)/write(2). On a file system with
    reflinks (btrfs, XFS) the whole file is cloned (FICLONE) by default.

    Where the file system does not report holes, a source whose allocated
    blocks are fewer than its size needs is read and its all-zero blocks
    (aligned to the destination's block size) become holes.

    A pipe, a device or any other non-regular destination receives real
    zeros for the holes. Files whose size says 0 (/proc, /sys) and pipes
    are read until end of file. A regular source that shrinks while it is
    copied gives a regular copy that ends where the source ends; one that
    grows is copied up to where reading ends.

    As cp: a file is never copied onto itself (same device and inode, also
    through hard or symbolic links), checked before anything is truncated;
    a source named twice is copied once (with a warning); a file created by
    this run is never overwritten by another source; a directory is never
    overwritten by a file.

OPTIONS
    --sparse=WHEN
        auto    (default) holes of the source stay holes; zeros stored as
                data stay data.
        always  also turn every all-zero block into a hole.
        never   write every byte, holes as zeros (a fully allocated copy,
                e.g. for a swap file).
    --reflink[=WHEN]
        auto    (default) clone the file where the file system can (the
                copy shares the source's blocks until either is written),
                else copy it.
        always  clone or fail (--reflink alone means always; only with
                --sparse=auto).
        never   never share blocks: no clone, and no copy_file_range,
                which may clone on its own.
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
        write error such as ENOSPC or EIO, clone refused with
        --reflink=always); the others were still copied. Also when the
        -v report could not be written.
    2   bad option, bad --sparse or --reflink argument, missing operand,
        or several sources with a target that is not a directory.

EXAMPLES
    truncate -s 1T disk.img && sparsecp disk.img copy.img
        Copies a 1 TiB hole in well under a second; du shows 0 for both.
    sparsecp --sparse=always -v dense.img sparse.img
        Digs holes where dense.img stores zeros and says how much.
    sparsecp --sparse=never swap.sparse swapfile
        A fully allocated copy.
    sparsecp --reflink=always vm.img /btrfs/vm-snapshot.img
        An instant clone, or an error where cloning is not possible.
    sparsecp image.raw /dev/stdout | gzip > image.raw.gz
        A pipe receives the holes as zeros.
)";

SparseMode parse_sparse(const char *arg) {
  if (std::strcmp(arg, "auto") == 0) return SparseMode::Auto;
  if (std::strcmp(arg, "always") == 0) return SparseMode::Always;
  if (std::strcmp(arg, "never") == 0) return SparseMode::Never;
  throw toolkit::UsageError("invalid argument " + toolkit::quote(arg, 200) + " for '--sparse'\n" +
                            "Valid arguments are: 'auto', 'always', 'never'");
}

// --reflink alone means always, as in cp.
ReflinkMode parse_reflink(const char *arg) {
  if (arg == nullptr || std::strcmp(arg, "always") == 0) return ReflinkMode::Always;
  if (std::strcmp(arg, "auto") == 0) return ReflinkMode::Auto;
  if (std::strcmp(arg, "never") == 0) return ReflinkMode::Never;
  throw toolkit::UsageError("invalid argument " + toolkit::quote(arg, 200) + " for '--reflink'\n" +
                            "Valid arguments are: 'auto', 'always', 'never'");
}

enum LongOnly { kSparse = 256, kReflink, kVersion };

const struct option kLongOptions[] = {
    {"sparse", required_argument, nullptr, kSparse}, {"reflink", optional_argument, nullptr, kReflink},
    {"verbose", no_argument, nullptr, 'v'},          {"help", no_argument, nullptr, 'h'},
    {"version", no_argument, nullptr, kVersion},     {nullptr, 0, nullptr, 0},
};

}  // namespace

Command parse_command(int argc, char **argv) {
  Command cmd;
  int first = toolkit::parse_options(argc, argv, "vh", kLongOptions, [&](int c, const char *arg) {
    switch (c) {
      case kSparse:
        cmd.copy.mode = parse_sparse(arg);
        break;
      case kReflink:
        cmd.copy.reflink = parse_reflink(arg);
        break;
      case 'v':
        cmd.copy.verbose = true;
        break;
      case 'h':
        cmd.help = true;
        break;
      case kVersion:
        cmd.version = true;
        break;
    }
    return true;
  });
  if (cmd.copy.reflink == ReflinkMode::Always && cmd.copy.mode != SparseMode::Auto)
    throw toolkit::UsageError("--reflink can be used only with --sparse=auto");
  for (int i = first; i < argc; ++i) cmd.operands.emplace_back(argv[i]);
  return cmd;
}

bool print_help() { return toolkit::write_stdout(kHelp); }

}  // namespace sparsecp
