// InlineFunction<R(Args...), N>: a move-only callable stored inline in N bytes.
// Construction from a callable that does not fit is a compile error, so using
// it never allocates (unlike std::function).
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace egw {

template <class Signature, size_t Capacity = 32>
class InlineFunction;

template <class R, class... Args, size_t Capacity>
class InlineFunction<R(Args...), Capacity> {
 public:
  InlineFunction() = default;
  InlineFunction(std::nullptr_t) {}

  template <class F, class D = std::decay_t<F>,
            class = std::enable_if_t<!std::is_same_v<D, InlineFunction> &&
                                     std::is_invocable_r_v<R, D&, Args...>>>
  InlineFunction(F&& f) {  // NOLINT(google-explicit-constructor): callable wrapper
    static_assert(sizeof(D) <= Capacity, "callable too large for InlineFunction; raise Capacity");
    static_assert(alignof(D) <= alignof(void*), "over-aligned callable (more than a pointer)");
    static_assert(std::is_nothrow_move_constructible_v<D>, "callable must be nothrow-movable");
    ::new (static_cast<void*>(storage_)) D(std::forward<F>(f));
    ops_ = &kOps<D>;
  }

  InlineFunction(InlineFunction&& other) noexcept { move_from(other); }
  InlineFunction& operator=(InlineFunction&& other) noexcept {
    if (this != &other) {
      reset();
      move_from(other);
    }
    return *this;
  }
  InlineFunction(const InlineFunction&) = delete;
  InlineFunction& operator=(const InlineFunction&) = delete;
  ~InlineFunction() { reset(); }

  explicit operator bool() const { return ops_ != nullptr; }

  R operator()(Args... args) { return ops_->invoke(storage_, std::forward<Args>(args)...); }

  void reset() {
    if (ops_) {
      ops_->destroy(storage_);
      ops_ = nullptr;
    }
  }

 private:
  struct Ops {
    R (*invoke)(void*, Args&&...);
    void (*move)(void* dst, void* src);
    void (*destroy)(void*);
  };
  template <class D>
  static constexpr Ops kOps = {
      [](void* p, Args&&... args) -> R {
        return (*static_cast<D*>(p))(std::forward<Args>(args)...);
      },
      [](void* dst, void* src) {
        ::new (dst) D(std::move(*static_cast<D*>(src)));
        static_cast<D*>(src)->~D();
      },
      [](void* p) { static_cast<D*>(p)->~D(); },
  };

  void move_from(InlineFunction& other) {
    if (other.ops_) {
      other.ops_->move(storage_, other.storage_);
      ops_ = std::exchange(other.ops_, nullptr);
    }
  }

  alignas(void*) unsigned char storage_[Capacity];  // pointer-aligned: no padding after it
  const Ops* ops_ = nullptr;
};

}  // namespace egw
