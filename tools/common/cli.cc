// cli.cc: see cli.h.
#include "common/cli.h"

#include <cstring>
#include <string>
#include <vector>

#include "common/diag.h"
#include "common/std_streams.h"

#ifndef SPANALLOC_VERSION
#error "SPANALLOC_VERSION comes from CMake's PROJECT_VERSION (tools/common/CMakeLists.txt)"
#endif

namespace toolkit {

namespace {

// The user's spelling of a long option, cut (a 100 KB argument is not echoed whole).
std::string spelled(std::string_view name) { return quote(std::string("--").append(name), 200); }

// The message for a getopt_long error on the long option in ELEM ("--name[=value]").
std::string long_option_error(const char *elem, const struct option *longopts) {
  std::string_view body(elem + 2);
  size_t eq = body.find('=');
  std::string_view name = body.substr(0, eq);
  std::vector<const struct option *> matches;
  for (const struct option *o = longopts; o && o->name; ++o) {
    std::string_view full(o->name);
    if (full == name) {
      matches.assign(1, o);
      break;
    }
    if (full.substr(0, name.size()) == name) matches.push_back(o);
  }
  if (matches.empty()) return "unrecognized option " + spelled(body);
  if (matches.size() > 1) {
    std::string msg = "option " + spelled(name) + " is ambiguous; possibilities:";
    for (const struct option *o : matches) msg += " '--" + std::string(o->name) + "'";
    return msg;
  }
  const struct option *o = matches[0];
  if (eq != std::string_view::npos && o->has_arg == no_argument)
    return "option '--" + std::string(o->name) + "' doesn't allow an argument";
  if (o->has_arg == required_argument) return "option '--" + std::string(o->name) + "' requires an argument";
  return "unrecognized option " + spelled(body);  // not reached with glibc
}

std::string short_option_error(int letter, bool missing_argument) {
  std::string shown = quote(std::string(1, static_cast<char>(letter)));
  return missing_argument ? "option requires an argument -- " + shown : "invalid option -- " + shown;
}

}  // namespace

int parse_options(int argc, char **argv, const char *shortopts, const struct option *longopts,
                  const OptionHandler &handle) {
  if (argc < 1 || argv == nullptr || argv[0] == nullptr) return argc < 1 ? 0 : argc;
  // A leading ':' makes getopt tell a missing argument (':') from a bad option ('?').
  std::string spec;
  if (*shortopts == '+' || *shortopts == '-') spec.push_back(*shortopts++);
  spec.push_back(':');
  spec.append(shortopts);
  opterr = 0;
  optind = 0;  // full restart, also of a previous parse's permutation state
  for (;;) {
    int before = optind == 0 ? 1 : optind;
    int c = getopt_long(argc, argv, spec.c_str(), longopts, nullptr);
    if (c == -1) break;
    if (c == '?' || c == ':') {
      // A long option is always consumed whole: optind moved past it.
      bool is_long = optind > before && std::strncmp(argv[optind - 1], "--", 2) == 0;
      if (is_long) throw UsageError(long_option_error(argv[optind - 1], longopts));
      throw UsageError(short_option_error(optopt, c == ':'));
    }
    if (!handle(c, optarg)) break;
  }
  return optind;
}

uint64_t parse_decimal(std::string_view text, uint64_t min, uint64_t max, std::string_view what) {
  uint64_t v = 0;
  bool ok = !text.empty();
  for (char ch : text) {
    if (ch < '0' || ch > '9') {
      ok = false;
      break;
    }
    unsigned d = static_cast<unsigned>(ch - '0');
    if (v > (UINT64_MAX - d) / 10) {  // overflow: certainly above MAX
      ok = false;
      break;
    }
    v = v * 10 + d;
  }
  if (!ok || v < min || v > max)
    throw UsageError("invalid " + std::string(what) + " " + quote(text, 64) + ": expected a whole number from " +
                     std::to_string(min) + " to " + std::to_string(max));
  return v;
}

const char *version() { return SPANALLOC_VERSION; }

int print_version() {
  return write_stdout(std::string(program_name()) + " (spanalloc tools) " + version() + "\n") ? 0 : 1;
}

}  // namespace toolkit
