// units: strict parsing of rates ("1M", "512K", "100"). (Byte counts for
// people: toolkit::human_bytes.)
#pragma once

#include <cstdint>
#include <string>

namespace iolimit {

// Parses a positive integer with an optional binary suffix K, M, G or T
// (also Ki, Mi, Gi, Ti; case-insensitive; 1K = 1024). Zero, negatives,
// fractions, unknown suffixes and overflow throw toolkit::UsageError
// naming `option` (the value quoted and cut).
// IOPS limits must fit in 32 bits (the kernel silently clamps above that).
uint64_t parse_rate(const std::string &text, const std::string &option, bool iops);

}  // namespace iolimit
