// cli.h: the command line of every tool: getopt_long with messages that
// name the tool (not argv[0]), strict numbers, --version.
#pragma once
#include <getopt.h>

#include <cstdint>
#include <functional>
#include <string_view>

namespace toolkit {

// Called for each option getopt_long returns: C is its short letter or the
// long-only value, ARG its argument (or null). Return false to stop parsing
// at this option (e.g. "-c COMMAND ARGS...": the rest belongs to the
// command). Throw UsageError for a bad value.
using OptionHandler = std::function<bool(int c, const char *arg)>;

// Runs getopt_long over argv (from argv[1]) with opterr off, and turns its
// errors into UsageError with GNU's wording: "invalid option -- 'q'",
// "unrecognized option '--nope'", "option requires an argument -- 'p'",
// "option '--sparse' requires an argument", "option '--verbose' doesn't
// allow an argument", "option '--s' is ambiguous; possibilities: ...".
// SHORTOPTS as for getopt_long, without a leading ':' (a leading '+' stops
// at the first operand). Returns the index of the first operand in argv,
// which getopt may have permuted. Restarts getopt (optind = 0) each call.
int parse_options(int argc, char **argv, const char *shortopts, const struct option *longopts,
                  const OptionHandler &handle);

// A whole number written the plain way: decimal digits only (no sign,
// blank, 0x, exponent, fraction or suffix; leading zeros are decimal), from
// MIN to MAX. Otherwise throws UsageError("invalid WHAT 'TEXT': expected a
// whole number from MIN to MAX"), TEXT quoted and cut.
uint64_t parse_decimal(std::string_view text, uint64_t min, uint64_t max, std::string_view what);

// The project's version (CMake's PROJECT_VERSION), e.g. "0.1.0".
const char *version();

// Prints "NAME (spanalloc tools) VERSION" on standard output; returns the
// exit status (1 if standard output could not be written).
int print_version();

}  // namespace toolkit
