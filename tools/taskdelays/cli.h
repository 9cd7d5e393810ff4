// cli: command-line parsing and argument validation for taskdelays.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/diag.h"
#include "report.h"

namespace taskdelays {

// Largest pid the kernel can ever hand out (PID_MAX_LIMIT on 64-bit).
inline constexpr long kPidMaxLimit = 4194304;

enum class Mode { none, pid, tgid, command, listen, help, version };

struct Options {
  Mode mode = Mode::none;
  uint32_t id = 0;                   // -p / -t
  std::vector<std::string> command;  // -c
  std::string cpumask;               // -m (listen); empty = all CPUs
  long max_events = 0;               // -n (listen); 0 = until interrupted
  int rcvbuf = 0;                    // -r (listen); 0 = default
  int timeout_ms = 5000;             // --timeout
  std::string output;                // -o FILE; empty = stdout
  ReportOptions report;
};

using toolkit::UsageError;  // message for stderr, exit status 2

// Parses ARGS (argv without argv[0]) with getopt_long. Throws UsageError
// with a specific message.
Options parse_args(const std::vector<std::string> &args);

// Strict pid parser: decimal digits only, 1..kPidMaxLimit. `what` names it.
uint32_t parse_pid(const std::string &s, const char *what);

// Validates a cpulist ("0-3,5") against `ncpus` configured CPUs and returns
// it normalised (no spaces). Throws UsageError.
std::string validate_cpumask(const std::string &s, long ncpus);

}  // namespace taskdelays
