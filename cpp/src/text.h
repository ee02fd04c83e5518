// Numbers in messages, as the Python runtime's f-strings write them ("%g" for {x:g}, "%.1f" for {x:.1f}),
// so that both runtimes name a problem in the same words. One definition for the library and its tools.
#pragma once

#include <cstdio>
#include <string>

namespace ast::detail {

// printf-style formatting of one number: format("%g", 0.25) == "0.25".
inline std::string format(const char* spec, double value) {
  char buf[48];
  std::snprintf(buf, sizeof buf, spec, value);
  return buf;
}

}  // namespace ast::detail
