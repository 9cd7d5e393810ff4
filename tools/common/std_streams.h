// std_streams.h: standard input, output and error, whatever state the
// caller left them in.
#pragma once
#include <string_view>

namespace toolkit {

// Makes sure file descriptors 0, 1 and 2 are open, so that no file the
// tool opens later lands on one of them (where a message or a report
// meant for the terminal would be written into it). A closed one is
// filled with /dev/null opened so that it still fails the way a closed
// descriptor does: 0 write-only (reads fail with EBADF), 1 and 2
// read-only (writes fail with EBADF). Returns false if that was not
// possible (no /dev/null): the caller should exit at once, with status 1
// and without writing anything.
bool ensure_std_fds();

// Writes TEXT to standard output through stdio and flushes it. On failure
// (closed, full disk, EPIPE with SIGPIPE ignored) says "write error: ..."
// once and returns false.
bool write_stdout(std::string_view text);

// Flushes standard output and checks that every earlier write reached it
// (through write_stdout or stdio); at the end of main, before exit status
// 0. Says "write error: ..." (unless write_stdout already did) and returns
// false otherwise. Tools that print with write_stdout get the errno of the
// failure in the message; a failure left in stdio's error flag alone is
// reported as EIO.
bool flush_stdout();

}  // namespace toolkit
