#!/usr/bin/env python3
"""The one table of allocators that every benchmark script reads.

    python3 bench/allocators.py list               names, one per line
    python3 bench/allocators.py path NAME [BUILD]  the library to LD_PRELOAD ("" for glibc)
    python3 bench/allocators.py package NAME       the Debian package that ships it

Shell scripts (fastpath.sh, profile.sh, ...) call the command line; Python
imports ALLOCATORS, PEERS and lib_path.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBDIR = "/usr/lib/x86_64-linux-gnu"

# name -> (Debian package, library relative to LIBDIR or to the build folder, chart colour).
# glibc is the baseline: nothing is preloaded. spanalloc comes from the build folder.
ALLOCATORS = {
    "glibc": ("libc6", None, "#888888"),
    "jemalloc": ("libjemalloc2", "libjemalloc.so.2", "#1f77b4"),
    "tcmalloc": ("libtcmalloc-minimal4", "libtcmalloc_minimal.so.4", "#2ca02c"),
    "mimalloc": ("libmimalloc2.0", "libmimalloc.so.2", "#ff7f0e"),
    "spanalloc": (None, "libspanalloc.so", "#d62728"),
}
PEERS = [a for a in ALLOCATORS if a != "spanalloc"]
ALL_ALLOCATORS = list(ALLOCATORS)
PACKAGES = {a: v[0] for a, v in ALLOCATORS.items() if v[0]}
COLORS = {a: v[2] for a, v in ALLOCATORS.items()}


def default_build():
    return os.path.join(ROOT, "build")


def lib_path(name, build=None):
    """The library to preload for allocator name ('' for glibc); KeyError if unknown."""
    _, lib, _ = ALLOCATORS[name]
    if lib is None:
        return ""
    if name == "spanalloc":
        return os.path.join(build or default_build(), lib)
    return os.path.join(LIBDIR, lib)


def main(argv):
    if len(argv) >= 1 and argv[0] == "list":
        print("\n".join(ALLOCATORS))
        return 0
    if len(argv) in (2, 3) and argv[0] in ("path", "package") and argv[1] in ALLOCATORS:
        if argv[0] == "path":
            print(lib_path(argv[1], argv[2] if len(argv) == 3 else None))
        else:
            print(ALLOCATORS[argv[1]][0] or "")
        return 0
    if len(argv) >= 2 and argv[1] not in ALLOCATORS:
        print(f"allocators.py: unknown allocator {argv[1]} (known: {', '.join(ALLOCATORS)})", file=sys.stderr)
        return 2
    print("\n".join(__doc__.strip().splitlines()[2:5]), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
