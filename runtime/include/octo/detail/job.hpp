// octo/detail/job.hpp — how submit() stores a callable in one machine word.
//
// A queue slot is 24 bytes (ops, word, meta): small slots are what lets one producer push tens of
// millions of tasks a second. A callable that is trivially copyable and fits in a word (a lambda
// capturing one pointer or reference, or nothing) lives in the word itself; anything larger is
// moved to the heap and the word holds the pointer.
#pragma once

#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include "octo/task.hpp"

namespace octo::detail {

struct JobOps {
  Outcome (*call)(std::uintptr_t& word);
  void (*destroy)(std::uintptr_t& word) noexcept;
};

template <class D>
Outcome invoke_job(D& f) {
  if constexpr (std::is_same_v<std::invoke_result_t<D&>, Outcome>) {
    return f();
  } else {
    f();
    return Outcome::success();
  }
}

// (clang-tidy's misc-redundant-expression takes the size and alignment limits, both 8 here, for
// the same expression.)
template <class D>
inline constexpr bool kFitsInWord =
    // NOLINTNEXTLINE(misc-redundant-expression)
    sizeof(D) <= sizeof(std::uintptr_t) &&
    alignof(D) <= alignof(std::uintptr_t) && std::is_trivially_copyable_v<D>;

template <class D>
inline constexpr JobOps kInlineJob{
    [](std::uintptr_t& w) { return invoke_job(*std::launder(reinterpret_cast<D*>(&w))); },
    [](std::uintptr_t&) noexcept {}};

template <class D>
inline constexpr JobOps kHeapJob{
    [](std::uintptr_t& w) { return invoke_job(*reinterpret_cast<D*>(w)); },
    [](std::uintptr_t& w) noexcept { delete reinterpret_cast<D*>(w); }};

// Packs `f` into (ops, word). Throws std::bad_alloc if a large callable cannot be allocated.
template <class F>
std::pair<const JobOps*, std::uintptr_t> make_job(F&& f) {
  using D = std::decay_t<F>;
  static_assert(std::is_invocable_v<D&>, "submit() needs a callable taking no arguments");
  std::uintptr_t word = 0;
  if constexpr (kFitsInWord<D>) {
    ::new (static_cast<void*>(&word)) D(std::forward<F>(f));
    return {&kInlineJob<D>, word};
  } else {
    return {&kHeapJob<D>, reinterpret_cast<std::uintptr_t>(new D(std::forward<F>(f)))};
  }
}

}  // namespace octo::detail
