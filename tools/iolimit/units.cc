#include "units.h"

#include <cctype>
#include <limits>

#include "common/diag.h"

namespace iolimit {

uint64_t parse_rate(const std::string &text, const std::string &option, bool iops) {
  auto bad = [&](const std::string &why) {
    return toolkit::UsageError("invalid value " + toolkit::quote(text, 40) + " for " + option + ": " + why);
  };
  std::size_t i = 0;
  uint64_t v = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    unsigned d = static_cast<unsigned>(text[i] - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) throw bad("too large");
    v = v * 10 + d;
    ++i;
  }
  if (i == 0) throw bad("expected a number with an optional K, M, G or T suffix");
  std::string suffix = text.substr(i);
  for (char &c : suffix) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  int shift = 0;
  if (suffix.empty())
    shift = 0;
  else if (suffix == "K" || suffix == "KI")
    shift = 10;
  else if (suffix == "M" || suffix == "MI")
    shift = 20;
  else if (suffix == "G" || suffix == "GI")
    shift = 30;
  else if (suffix == "T" || suffix == "TI")
    shift = 40;
  else
    throw bad("unknown suffix (use K, M, G or T; 1K = 1024)");
  if (shift && v > (std::numeric_limits<uint64_t>::max() >> shift)) throw bad("too large");
  v <<= shift;
  if (v == 0) throw bad("must be greater than 0 (leave the option out for no limit)");
  if (iops && v > std::numeric_limits<uint32_t>::max()) throw bad("at most 4294967295 operations per second");
  return v;
}

}  // namespace iolimit
