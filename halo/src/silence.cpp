#include "halo/silence.hpp"

#include <fnmatch.h>

#include <string>

namespace halo {

bool glob_match(std::string_view glob, std::string_view text) {
  if (glob.empty()) return true;
  // fnmatch wants NUL-terminated strings; ids and globs are short.
  const std::string g(glob), t(text);
  return ::fnmatch(g.c_str(), t.c_str(), 0) == 0;
}

}  // namespace halo
