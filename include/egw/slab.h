// SlabPool<T>: a per-worker object pool. Objects live in fixed chunks that are
// never returned to the allocator while the pool lives; create/destroy are a
// free-list pop/push. Not thread-safe: one pool belongs to one worker.
//
// `max_objects` bounds the pool: create() returns nullptr past it, and the
// caller applies back-pressure (stop accepting) rather than failing a session.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "egw/assert.h"

namespace egw {

template <class T>
class SlabPool {
 public:
  explicit SlabPool(size_t objects_per_chunk = 256, size_t max_objects = SIZE_MAX)
      : per_chunk_(objects_per_chunk ? objects_per_chunk : 1), max_(max_objects) {}
  SlabPool(const SlabPool&) = delete;
  SlabPool& operator=(const SlabPool&) = delete;
  ~SlabPool() { EGW_ASSERT(in_use_ == 0); }

  // Constructs a T in a free slot; nullptr when the pool is at max_objects.
  // With no arguments T is default-initialised, not value-initialised: a
  // buffer type is not zeroed on every allocation.
  template <class... A>
  T* create(A&&... args) {
    if (!free_) {
      if (capacity_ >= max_) return nullptr;
      grow();
    }
    Slot* s = free_;
    free_ = s->next;
    ++in_use_;
    if constexpr (sizeof...(A) == 0) {
      return ::new (static_cast<void*>(s->storage)) T;
    } else {
      return ::new (static_cast<void*>(s->storage)) T(std::forward<A>(args)...);
    }
  }

  // Destroys `obj` (which must come from this pool) and frees its slot.
  void destroy(T* obj) {
    EGW_ASSERT(obj != nullptr && in_use_ > 0);
    obj->~T();
    Slot* s = reinterpret_cast<Slot*>(obj);
    s->next = free_;
    free_ = s;
    --in_use_;
  }

  // Pre-allocates chunks so that `n` objects can be created without growing.
  void reserve(size_t n) {
    while (capacity_ < n && capacity_ < max_)
      grow();
  }

  size_t in_use() const { return in_use_; }
  size_t capacity() const { return capacity_; }
  size_t chunk_allocations() const { return chunks_.size(); }

 private:
  union Slot {
    Slot* next;
    alignas(T) unsigned char storage[sizeof(T)];
  };

  void grow() {
    auto chunk = std::make_unique<Slot[]>(per_chunk_);
    for (size_t i = per_chunk_; i-- > 0;) {
      chunk[i].next = free_;
      free_ = &chunk[i];
    }
    chunks_.push_back(std::move(chunk));
    capacity_ += per_chunk_;
  }

  const size_t per_chunk_;
  const size_t max_;
  std::vector<std::unique_ptr<Slot[]>> chunks_;
  Slot* free_ = nullptr;
  size_t in_use_ = 0;
  size_t capacity_ = 0;
};

}  // namespace egw
