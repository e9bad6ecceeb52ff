#include "octo/journal.hpp"

namespace octo {

std::string_view to_string(Durability d) noexcept {
  switch (d) {
    case Durability::kNone:
      return "none";
    case Durability::kAsync:
      return "async";
    case Durability::kSync:
      return "sync";
  }
  return "unknown";
}

}  // namespace octo
