// detail::field_count<T>(): the number of fields of an aggregate, at compile time.
//
// Code that writes every field of a recycled struct (the audit ring's slot exchange, grouping
// over old weak points, planning over old tasks) static_asserts the count next to the writes, so
// a field added to the struct fails to compile there until it is written too.
#pragma once

#include <cstddef>
#include <type_traits>

namespace halo::detail {

// Converts to any field type in aggregate initialisation (never evaluated).
struct AnyField {
  template <class T>
  operator T() const;  // NOLINT(google-explicit-constructor): the point is implicit conversion
};

template <class T, class... Fields>
constexpr std::size_t field_count() {
  static_assert(std::is_aggregate_v<T>);
  if constexpr (requires { T{Fields{}..., AnyField{}}; }) {
    return field_count<T, Fields..., AnyField>();
  } else {
    return sizeof...(Fields);
  }
}

}  // namespace halo::detail
