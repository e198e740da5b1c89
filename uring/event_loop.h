// EventLoop: one per worker thread. Owns the ring, the owner table, the timer
// wheel, the provided-buffer ring and the loop's counters; submits and waits
// in one io_uring_enter whose timeout is the wheel's next deadline, then
// dispatches every completion to its owner.
//
//   for (;;) {
//     run deferred work; re-arm receivers parked on ENOBUFS; flush sends;
//     publish released buffers;
//     io_uring_enter(submit all, wait >= wait_nr or until the next timer)
//     dispatch CQEs; advance timers; release retired owners
//   }
//
// Not thread-safe: everything here belongs to the worker thread, except
// ring_fd(), which other threads use as the target of MSG_RING doorbells.
#pragma once

#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "egw/address.h"
#include "egw/inline_function.h"
#include "egw/intrusive_list.h"
#include "egw/result.h"
#include "egw/slab.h"
#include "uring/buffer_ring.h"
#include "uring/completion.h"
#include "uring/ring.h"
#include "uring/timer_wheel.h"

namespace egw::uring {

struct LoopOptions {
  RingOptions ring;
  BufferRing::Options buffers;
  // Batching: wait for `wait_nr` completions, but no longer than
  // `min_wait_usec` once one has arrived (needs FEAT_MIN_TIMEOUT; ignored
  // otherwise). wait_nr 1 / min_wait 0 is the lowest-latency setting.
  unsigned wait_nr = 1;
  unsigned min_wait_usec = 0;
  // Owners expected at most at once: the owner table is reserved for them
  // up front (address space only; a slot's page is touched when first used),
  // so the table never reallocates, and its memory grows with the owners
  // rather than in doublings. More are still accepted.
  size_t owners = 0;
};

struct LoopCounters {
  std::array<uint64_t, static_cast<size_t>(Op::kCount)> sqes{};  // by Op
  uint64_t enters = 0;
  uint64_t cqes = 0;
  uint64_t sq_full_submits = 0;  // submits forced by a full SQ
  uint64_t cq_overflows = 0;     // kernel overflow count seen (should stay 0)
  uint64_t stale_cqes = 0;       // CQEs for a recycled slot (lifecycle bug signal)
  uint64_t stale_buffers = 0;    // buffers handed back from stale CQEs
  uint64_t enobufs = 0;          // receivers parked because the buffer ring ran dry
  uint64_t rearms = 0;           // receivers re-armed from the ENOBUFS queue
  uint64_t spills = 0;           // received buffers copied out of the ring to wait (spill())
  uint64_t timers_fired = 0;
  uint64_t doorbells = 0;

  uint64_t total_sqes() const {
    uint64_t n = 0;
    for (auto v : sqes)
      n += v;
    return n;
  }
};

// Something that wants a call just before the loop enters the kernel (send
// queues that coalesce everything queued in one batch into one sendmsg).
class Flushable {
 public:
  virtual void flush() = 0;

 protected:
  ~Flushable() = default;
  void flush_node_unlink() { flush_node_.unlink(); }

 private:
  friend class EventLoop;
  ListNode flush_node_;
};

// A refcounted block of worker memory for bytes the proxy writes itself
// (encoded heads, chunk framing, heads that spanned receive buffers).
struct Chunk {
  static constexpr uint32_t kSize = 32 * 1024;
  uint32_t refs = 0;
  uint32_t used = 0;
  uint8_t data[kSize];
};

// Bytes on their way through a session, one of:
//  - a slice of a received provided buffer (bid; refcounted in the ring,
//    which also knows whom to charge until the last slice is released);
//  - a slice of a Chunk (refcounted);
//  - memory the caller keeps alive until it is sent (static text).
// Release every IoBuf exactly once with EventLoop::release().
struct IoBuf {
  const uint8_t* data = nullptr;
  uint32_t len = 0;
  uint16_t bid = BufferRing::kNoBuffer;
  Chunk* chunk = nullptr;
};

// A queued IoBuf (send queues are linked lists of these, from the worker's pool).
struct IoBufNode {
  IoBuf buf;
  IoBufNode* next = nullptr;
};

// The iovecs of one in-flight sendmsg; taken from the worker's pool only for
// the life of that send, so an idle socket carries none.
struct IovBlock {
  static constexpr unsigned kMax = 64;
  iovec iov[kMax];
  msghdr msg;
};

class EventLoop {
 public:
  // Creates the loop on the calling thread (which then owns the ring).
  static Result<std::unique_ptr<EventLoop>> create(const LoopOptions& options);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // The loop of the calling thread, or nullptr.
  static EventLoop* current();

  // -- owners -------------------------------------------------------------
  // Gives `o` a slot; its completions can then be submitted.
  void attach(Owner& o);
  // Marks `o` done: once nothing of it is in flight (maybe at once), the loop
  // detaches it and calls o.on_released() after the current dispatch step.
  void retire(Owner& o);

  // -- submission -----------------------------------------------------------
  // A zeroed SQE; never null (submits to make room when the SQ is full).
  io_uring_sqe* sqe();
  // Makes sure the next `n` sqe() calls come from the same submission batch
  // (linked chains must not be split by a forced submit).
  void reserve_sqes(unsigned n);
  // Tags `sqe` as an operation of `c` and counts it in flight. Call after prep.
  void arm(Completion& c, io_uring_sqe* sqe);
  // Tags an SQE whose CQE the loop itself consumes and ignores (used for
  // fire-and-forget ops such as closing a descriptor nobody owns).
  void arm_internal(io_uring_sqe* sqe, Op op);

  // -- services -------------------------------------------------------------
  TimerWheel& timers() { return timers_; }
  // Sub-millisecond wake-up: the next wait ends no later than `ns`
  // (CLOCK_MONOTONIC), in addition to the timer wheel's deadline. One-shot:
  // cleared at each enter (callers that pace work, like an open-loop load
  // generator, set it again every iteration).
  void wake_at_ns(uint64_t ns) {
    if (ns < wake_at_ns_) wake_at_ns_ = ns;
  }
  uint64_t now_ms() const { return timers_.now(); }
  BufferRing& buffers() { return *buffers_; }
  // Another reference to [off, off+len) of `b` (same backing memory).
  IoBuf share(const IoBuf& b, uint32_t off, uint32_t len);
  // Drops one reference to the memory behind `b`.
  void release(const IoBuf& b);
  // A fresh chunk (refs 1), or nullptr when the pool is at its cap.
  Chunk* new_chunk();
  // An IoBuf over [off, off+len) of `c` taking a new reference.
  IoBuf chunk_slice(Chunk* c, uint32_t off, uint32_t len);
  // `n` bytes (n <= 4096) of scratch memory for small framing writes (chunk
  // sizes, short answers), carved from a shared chunk: the IoBuf keeps it
  // alive until released. nullptr data when the chunk pool is exhausted.
  IoBuf scratch(uint32_t n);
  // For writers that fill chunks and let go of them between flushes: a chunk
  // to write into (one reference taken) and `*used`, where its room starts:
  // the rest of the chunk the last writer gave back, else a fresh one
  // (nullptr when the pool is at its cap). Connections that each write a
  // few bytes in one batch (SETTINGS to a burst of new HTTP/2 clients)
  // share chunks instead of taking 32 KiB each until the batch is sent.
  Chunk* take_write_chunk(uint32_t* used);
  // Gives back a chunk written up to `used` (the reference taken): its room
  // goes to the next writer; the slices handed out keep what was written.
  void give_back_write_chunk(Chunk* c, uint32_t used);
  // `b` moved out of the receive buffer ring: a copy in chunk memory (copies
  // are packed together), and `b` released. For bytes that will wait (a
  // paused receiver, a queue toward a slow peer): the ring is shared by
  // every connection of the worker, and buffers parked behind slow peers
  // would starve the others. `b` itself (not released) when it is not in a
  // ring buffer, or when no chunk could be had.
  IoBuf spill(const IoBuf& b);
  size_t chunks_in_use() const { return chunks_.in_use(); }
  SlabPool<IoBufNode>& io_nodes() { return io_nodes_; }
  SlabPool<IovBlock>& iov_blocks() { return iov_blocks_; }
  Ring& ring() { return ring_; }
  int ring_fd() const { return ring_fd_; }
  const LoopCounters& counters() const { return counters_; }
  LoopCounters& counters() { return counters_; }

  // Parks a receiver whose multishot recv ended with ENOBUFS: `rearm(o)` is
  // called once enough buffers are free again, in the order receivers were
  // parked, unless `o` has been released by then. Loses no byte: the data
  // waits in the socket. The queue holds the owner's slot and generation, so
  // a receiver carries nothing for it; it remembers itself that it is parked
  // (and ignores a call it no longer wants).
  void park_enobufs(Owner& o, void (*rearm)(Owner&));

  // Queues a connect of `fd` to `addr` with a linked timeout of `timeout_ms`,
  // delivered to `connect` and `timeout` (ECANCELED on the connect when the
  // timeout fired first). The kernel reads the address and the timespec
  // while it takes the two SQEs in, so the loop keeps both only until the
  // next submit: a socket carries no connect state.
  void submit_connect(Completion& connect, Completion& timeout, int fd, const SocketAddress& addr,
                      uint32_t timeout_ms);
  // Runs `fn` on this thread after the current batch of completions.
  void defer(InlineFunction<void(), 32> fn);
  // Calls f.flush() once before the next enter (idempotent per batch).
  void schedule_flush(Flushable& f);

  // Completions whose user_data has slot 0 and this op are delivered here
  // (MSG_RING doorbells from other threads).
  void set_doorbell_handler(InlineFunction<void(int32_t), 32> fn) { doorbell_ = std::move(fn); }
  // user_data of a doorbell CQE, for senders.
  static constexpr uint64_t kDoorbellUserData = user_data::pack(0, 0, 0, Op::kMsgRing);

  // -- running --------------------------------------------------------------
  // Runs until stop(). Returns an error only when the ring itself fails.
  Status run();
  // One iteration; waits for at least one event (or the next timer) when
  // `wait` is true. Returns the number of CQEs dispatched.
  Result<unsigned> run_once(bool wait = true);
  // Makes run() return after the current iteration (call from this thread).
  void stop() { stop_ = true; }
  bool stopping() const { return stop_; }

  // Owners attached and not yet released.
  size_t live_owners() const { return live_owners_; }

 private:
  explicit EventLoop(Ring ring);

  void dispatch(const io_uring_cqe& cqe);
  void handle_stale(const io_uring_cqe& cqe);
  void release_retired();
  void before_enter();
  unsigned flush_sq();
  Result<int> enter(unsigned to_submit, bool wait);

  struct SlotEntry {
    Owner* owner = nullptr;
    uint32_t gen = 0;
    uint32_t next_free = 0;
  };

  Ring ring_;
  int ring_fd_;
  std::unique_ptr<BufferRing> buffers_;
  SlabPool<IoBufNode> io_nodes_{1024};
  SlabPool<IovBlock> iov_blocks_{64};
  SlabPool<Chunk> chunks_{16};
  Chunk* spill_ = nullptr;       // where spill() packs copies
  Chunk* scratch_ = nullptr;     // current chunk for scratch() (holds one reference)
  Chunk* write_tail_ = nullptr;  // room given back by a writer (holds one reference)
  uint32_t write_tail_used_ = 0;
  TimerWheel timers_;
  LoopCounters counters_;
  unsigned wait_nr_ = 1;
  unsigned min_wait_usec_ = 0;
  bool ext_arg_ = false;
  bool stop_ = false;
  uint64_t wake_at_ns_ = UINT64_MAX;

  std::vector<SlotEntry> slots_;  // slots_[0] is reserved for the loop
  uint32_t free_slot_ = 0;        // head of the free list (0 = none)
  size_t live_owners_ = 0;
  std::vector<Owner*> released_;  // retired, nothing in flight, to release

  struct Parked {
    uint32_t slot;
    uint32_t gen;
    void (*rearm)(Owner&);
  };
  std::vector<Parked> enobufs_;  // FIFO from enobufs_head_
  size_t enobufs_head_ = 0;

  // What queued connects point at, until the kernel has taken them in.
  struct ConnectArgs {
    SocketAddress addr;
    __kernel_timespec ts;
  };
  ConnectArgs& connect_args();
  std::array<ConnectArgs, 128> connect_args_{};
  unsigned connect_args_used_ = 0;
  IntrusiveList<Flushable, &Flushable::flush_node_> flush_;
  std::vector<InlineFunction<void(), 32>> deferred_;
  std::vector<InlineFunction<void(), 32>> running_deferred_;
  InlineFunction<void(int32_t), 32> doorbell_;
  unsigned last_koverflow_ = 0;
};

}  // namespace egw::uring
