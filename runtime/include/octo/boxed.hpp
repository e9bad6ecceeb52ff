// octo/boxed.hpp — a value kept out of line, one pointer wide, with no allocation while empty.
//
// Task carries fields most tasks leave empty (target agents, a concurrency key). Inline, each
// would widen every queued task, and a task's size is memory traffic on the executor's hot path:
// a std::string costs 32 bytes of every task, a Boxed<std::string> 8. An empty Boxed holds no
// pointer and reads as T{}; storing an empty value (an empty string or vector) keeps it empty.
// It is a value: copies are deep, moves steal the pointer, comparison compares values.
//
//   octo::Task t{.type = "agent.revive", .target_agents = {"dreamops"}, .key = "agent-17"};
//   for (const std::string& agent : *t.target_agents) ...;   // reads as the vector
//   t.target_agents.edit().push_back("ignite");              // allocates when still empty
//
// Cost: reading an empty Boxed is one load and a branch; the first write of a non-empty value
// allocates once. Not thread-safe beyond what a plain T is.
#pragma once

#include <concepts>
#include <initializer_list>
#include <memory>
#include <utility>

namespace octo {

template <class T>
class Boxed {
 public:
  Boxed() noexcept = default;
  // From anything T is built from: a string literal for Boxed<std::string>, a vector for
  // Boxed<std::vector<...>>. Implicit, so the field reads as its T; the constraint keeps it from
  // hiding the copy and move constructors (which clang-tidy does not see through a requires).
  template <class U>
  requires(std::constructible_from<T, U&&> && !std::same_as<std::remove_cvref_t<U>, Boxed>)
      // NOLINTNEXTLINE(google-explicit-constructor,bugprone-forwarding-reference-overload)
      Boxed(U&& value) {
    set(T(std::forward<U>(value)));
  }
  // {"a", "b"} for a Boxed container.
  template <class V = T>
  Boxed(std::initializer_list<typename V::value_type> items)  // NOLINT(google-explicit-*)
  {
    set(T(items));
  }
  Boxed(const Boxed& other) : p_(other.p_ ? std::make_unique<T>(*other.p_) : nullptr) {}
  Boxed(Boxed&&) noexcept = default;
  Boxed& operator=(const Boxed& other) {
    if (this != &other) p_ = other.p_ ? std::make_unique<T>(*other.p_) : nullptr;
    return *this;
  }
  Boxed& operator=(Boxed&&) noexcept = default;
  ~Boxed() = default;

  // The value, or a shared empty T when none was stored.
  const T& operator*() const noexcept { return p_ ? *p_ : empty_value(); }
  const T* operator->() const noexcept { return &**this; }
  // True when no value, or an empty one, is held.
  bool empty() const noexcept { return !p_ || is_empty(*p_); }

  // The value for writing; allocates an empty T first when none is held. Writing it empty
  // leaves the allocation until reset().
  T& edit() {
    if (!p_) p_ = std::make_unique<T>();
    return *p_;
  }
  void reset() noexcept { p_.reset(); }

  friend bool operator==(const Boxed& a, const Boxed& b) { return *a == *b; }
  friend bool operator==(const Boxed& a, const T& b) { return *a == b; }

 private:
  void set(T&& value) {
    if (!is_empty(value)) p_ = std::make_unique<T>(std::move(value));
  }
  static bool is_empty(const T& value) noexcept {
    if constexpr (requires { value.empty(); }) {
      return value.empty();
    } else {
      return false;
    }
  }
  static const T& empty_value() noexcept {
    static const T kEmpty{};
    return kEmpty;
  }

  std::unique_ptr<T> p_;
};

}  // namespace octo
