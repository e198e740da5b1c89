// Completions and their owners.
//
// Every io_uring operation is a `Completion` embedded in the object that owns
// it (an `Owner`: a connection, a listener, a relay). The SQE's user_data
// names the owner's slot in its worker's owner table, the slot's generation
// and which completion of the owner it is:
//
//   [63:40] slot (24 bits) | [39:16] generation (24 bits) | [15:8] index | [7:0] op
//
// A CQE whose generation does not match the slot's current one is stale: the
// event loop counts it and hands back any provided buffers it carries, and
// never touches the (recycled) owner. An owner is released only after it has
// been retired *and* its in-flight count has reached zero, so in a correct
// program stale CQEs do not happen; the count is a lifecycle-bug alarm.
//
// What to call for a completion is the same for every object of one owner
// type: handlers and the completions' offsets live in one table per type
// (written by each constructor with the same values; relaxed atomics, so
// workers constructing owners at once do not race), and an owner keeps only a
// pointer to its type's table. A completion finds its owner by its own offset
// inside it (no pointer), so it is 8 bytes and an owner's bookkeeping 40,
// which every connection pays (a socket has eight completions).
#pragma once

#include <liburing.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "egw/assert.h"

namespace egw::uring {

class EventLoop;
class Owner;

template <class M>
struct MemberClass;
template <class C, class R, class... A>
struct MemberClass<R (C::*)(A...)> {
  using type = C;
};

// What an operation is, for counters and traces. Values are ours, not the
// kernel's opcodes.
enum class Op : uint8_t {
  kNone = 0,
  kAccept,
  kRecv,
  kSend,
  kSendZc,
  kConnect,
  kLinkTimeout,
  kShutdown,
  kClose,
  kCancel,
  kPoll,
  kPollRemove,
  kTimeout,
  kMsgRing,
  kNop,
  kSocket,
  kWrite,
  kCount,
};
const char* to_string(Op op);

namespace user_data {
inline constexpr uint64_t kSlotBits = 24;
inline constexpr uint64_t kGenBits = 24;
inline constexpr uint32_t kMaxSlot = (1u << kSlotBits) - 1;
inline constexpr uint32_t kGenMask = (1u << kGenBits) - 1;

inline constexpr uint64_t pack(uint32_t slot, uint32_t gen, uint8_t index, Op op) {
  return (uint64_t{slot} << 40) | (uint64_t{gen & kGenMask} << 16) | (uint64_t{index} << 8) |
         static_cast<uint8_t>(op);
}
inline constexpr uint32_t slot(uint64_t ud) {
  return static_cast<uint32_t>(ud >> 40);
}
inline constexpr uint32_t gen(uint64_t ud) {
  return static_cast<uint32_t>(ud >> 16) & kGenMask;
}
inline constexpr uint8_t index(uint64_t ud) {
  return static_cast<uint8_t>(ud >> 8);
}
inline constexpr Op op(uint64_t ud) {
  return static_cast<Op>(ud & 0xff);
}
}  // namespace user_data

// One kind of operation of an owner. `inflight` counts its SQEs whose final
// CQE has not arrived (a multishot counts once until a CQE without F_MORE).
class Completion {
 public:
  using Handler = void (*)(Owner& owner, const io_uring_cqe& cqe);

  Completion() = default;
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;

  Op op() const { return op_; }
  uint16_t inflight() const { return inflight_; }
  bool busy() const { return inflight_ != 0; }
  // user_data of this completion's SQEs (valid once its owner is attached).
  uint64_t user_data() const;

 private:
  friend class Owner;
  friend class EventLoop;
  Owner& owner() const;

  uint32_t back_ = 0;  // bytes from the owner's Owner base to this completion
  Op op_ = Op::kNone;
  uint8_t index_ = 0;
  uint16_t inflight_ = 0;
};
static_assert(sizeof(Completion) == 8);

// Base of every object that has operations in flight.
//
// Life cycle: construct -> EventLoop::attach() (gets a slot) -> submit ops ->
// EventLoop::retire() when done -> the loop calls on_released() once no op is
// in flight. on_released() may destroy the object (return it to its pool).
class Owner {
 public:
  static constexpr unsigned kMaxCompletions = 8;

  // The per-type table (see the top of this file).
  struct Table {
    std::array<std::atomic<Completion::Handler>, kMaxCompletions> handlers{};
    std::array<std::atomic<uint32_t>, kMaxCompletions> offsets{};  // from the Owner base
  };
  template <class T>
  static inline Table type_table{};

  Owner() = default;
  Owner(const Owner&) = delete;
  Owner& operator=(const Owner&) = delete;
  virtual ~Owner() = default;

  uint32_t inflight() const { return inflight_; }
  bool attached() const { return slot_ != 0; }
  bool retiring() const { return retiring_; }

 protected:
  // Registers `c` as this owner's completion for `op`, delivered to the member
  // function `Fn` (`void T::fn(const io_uring_cqe&)`) of the derived class.
  // Call from the constructor.
  template <auto Fn>
  void bind(Completion& c, Op op) {
    using T = typename MemberClass<decltype(Fn)>::type;
    EGW_RELEASE_ASSERT(count_ < kMaxCompletions, "too many completions for one owner");
    Table& table = type_table<T>;
    EGW_RELEASE_ASSERT(table_ == nullptr || table_ == &table,
                       "one owner binds completions of one class only");
    table_ = &table;
    c.op_ = op;
    c.index_ = static_cast<uint8_t>(count_);
    const Completion::Handler h = [](Owner& o, const io_uring_cqe& cqe) {
      (static_cast<T&>(o).*Fn)(cqe);
    };
    const auto off = static_cast<uint32_t>(reinterpret_cast<const char*>(&c) -
                                           reinterpret_cast<const char*>(this));
    c.back_ = off;
    table.handlers[count_].store(h, std::memory_order_relaxed);
    table.offsets[count_].store(off, std::memory_order_relaxed);
    ++count_;
  }

  Completion& completion(unsigned index) {
    return *reinterpret_cast<Completion*>(reinterpret_cast<char*>(this) +
                                          table_->offsets[index].load(std::memory_order_relaxed));
  }

  // Called by the event loop once this owner is retired and nothing it
  // submitted is still in flight. The owner is already detached from its slot.
  // May destroy *this.
  virtual void on_released() = 0;

 private:
  friend class EventLoop;
  friend class Completion;
  Table* table_ = nullptr;
  uint32_t slot_ = 0;  // 0 = not attached (slot 0 is the loop's own)
  uint32_t gen_ = 0;
  uint32_t inflight_ = 0;
  uint8_t count_ = 0;  // completions bound (at most kMaxCompletions)
  bool retiring_ = false;
  bool released_queued_ = false;
};

static_assert(sizeof(Owner) == 32);

inline Owner& Completion::owner() const {
  return *reinterpret_cast<Owner*>(const_cast<char*>(reinterpret_cast<const char*>(this)) - back_);
}

inline uint64_t Completion::user_data() const {
  const Owner& o = owner();
  return user_data::pack(o.slot_, o.gen_, index_, op_);
}

}  // namespace egw::uring
