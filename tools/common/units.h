// units.h: sizes for people to read.
#pragma once
#include <cstdint>
#include <string>

namespace toolkit {

// Binary units with one decimal: "512 B", "4.0 KiB", "1.5 MiB", up to EiB.
std::string human_bytes(uint64_t bytes);

}  // namespace toolkit
