// octo/detail/inline_function.hpp — a move-only callable with inline storage for submit().
//
// Callables up to kInline bytes live inside the queue slot itself, so submitting a small lambda
// allocates nothing; larger ones fall back to one heap allocation.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

#include "octo/task.hpp"

namespace octo::detail {

class InlineFunction {
 public:
  static constexpr std::size_t kInline = 48;

  InlineFunction() noexcept = default;

  template <class F, class D = std::decay_t<F>,
            class = std::enable_if_t<!std::is_same_v<D, InlineFunction>>>
  explicit InlineFunction(F&& f) {
    static_assert(std::is_invocable_v<D&>, "submit() needs a callable taking no arguments");
    if constexpr (sizeof(D) <= kInline && alignof(D) <= alignof(std::max_align_t) &&
                  std::is_nothrow_move_constructible_v<D>) {
      ::new (static_cast<void*>(buf_)) D(std::forward<F>(f));
      ops_ = &kInlineOps<D>;
    } else {
      *reinterpret_cast<D**>(buf_) = new D(std::forward<F>(f));
      ops_ = &kHeapOps<D>;
    }
  }

  InlineFunction(InlineFunction&& o) noexcept : ops_(o.ops_) {
    if (ops_) {
      ops_->move(o.buf_, buf_);
      o.ops_ = nullptr;
    }
  }
  InlineFunction& operator=(InlineFunction&& o) noexcept {
    if (this != &o) {
      reset();
      ops_ = o.ops_;
      if (ops_) {
        ops_->move(o.buf_, buf_);
        o.ops_ = nullptr;
      }
    }
    return *this;
  }
  InlineFunction(const InlineFunction&) = delete;
  InlineFunction& operator=(const InlineFunction&) = delete;
  ~InlineFunction() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }

  // Calls the target; a callable returning void counts as success.
  Outcome operator()() { return ops_->call(buf_); }

  void reset() noexcept {
    if (ops_) {
      ops_->destroy(buf_);
      ops_ = nullptr;
    }
  }

 private:
  struct Ops {
    Outcome (*call)(void*);
    void (*move)(void* from, void* to) noexcept;
    void (*destroy)(void*) noexcept;
  };

  template <class D>
  static Outcome invoke(D& f) {
    if constexpr (std::is_same_v<std::invoke_result_t<D&>, Outcome>) {
      return f();
    } else {
      f();
      return Outcome::success();
    }
  }

  template <class D>
  static constexpr Ops kInlineOps{[](void* p) { return invoke(*std::launder(static_cast<D*>(p))); },
                                  [](void* from, void* to) noexcept {
                                    D* src = std::launder(static_cast<D*>(from));
                                    ::new (to) D(std::move(*src));
                                    src->~D();
                                  },
                                  [](void* p) noexcept { std::launder(static_cast<D*>(p))->~D(); }};

  template <class D>
  static constexpr Ops kHeapOps{
      [](void* p) { return invoke(**static_cast<D**>(p)); },
      [](void* from, void* to) noexcept { *static_cast<D**>(to) = *static_cast<D**>(from); },
      [](void* p) noexcept { delete *static_cast<D**>(p); }};

  alignas(std::max_align_t) unsigned char buf_[kInline];
  const Ops* ops_ = nullptr;
};

}  // namespace octo::detail
