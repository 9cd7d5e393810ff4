// units: strict parsing of rates ("1M", "512K", "100") and byte formatting.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace iolimit {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parses a positive integer with an optional binary suffix K, M, G or T
// (also Ki, Mi, Gi, Ti; case-insensitive; 1K = 1024). Zero, negatives,
// fractions, unknown suffixes and overflow throw UsageError naming `option`.
// IOPS limits must fit in 32 bits (the kernel silently clamps above that).
uint64_t parse_rate(const std::string &text, const std::string &option, bool iops);

std::string human_bytes(uint64_t bytes);

}  // namespace iolimit
