#include "uring/event_loop.h"

#include <algorithm>
#include <csignal>
#include <cstring>

#include "egw/assert.h"
#include "egw/clock.h"
#include "egw/log.h"
#include "uring/compat.h"
#include "uring/probe.h"

namespace egw::uring {
namespace {
thread_local EventLoop* t_current = nullptr;
// Re-arm receivers parked on ENOBUFS only when this many buffers are free
// (or an eighth of a small ring), so a re-armed recv does not run dry at once.
constexpr unsigned kRearmMinFree = 16;
}  // namespace

const char* to_string(Op op) {
  switch (op) {
    case Op::kNone:
      return "none";
    case Op::kAccept:
      return "accept";
    case Op::kRecv:
      return "recv";
    case Op::kSend:
      return "send";
    case Op::kSendZc:
      return "send_zc";
    case Op::kConnect:
      return "connect";
    case Op::kLinkTimeout:
      return "link_timeout";
    case Op::kShutdown:
      return "shutdown";
    case Op::kClose:
      return "close";
    case Op::kCancel:
      return "cancel";
    case Op::kPoll:
      return "poll";
    case Op::kPollRemove:
      return "poll_remove";
    case Op::kTimeout:
      return "timeout";
    case Op::kMsgRing:
      return "msg_ring";
    case Op::kNop:
      return "nop";
    case Op::kSocket:
      return "socket";
    case Op::kWrite:
      return "write";
    case Op::kCount:
      break;
  }
  return "?";
}

Result<std::unique_ptr<EventLoop>> EventLoop::create(const LoopOptions& options) {
  if (t_current) return fail(EEXIST, "this thread already has an event loop");
  auto ring = Ring::create(options.ring);
  if (!ring) return std::unexpected(ring.error());
  // liburing 2.3 initialises the SQ index array once (identity) and our
  // flush_sq() relies on that; check rather than assume.
  io_uring* r = ring->get();
  for (unsigned i = 0; i < r->sq.ring_entries; ++i) {
    EGW_RELEASE_ASSERT(r->sq.array[i] == i, "liburing did not initialise the SQ array");
  }
  std::unique_ptr<EventLoop> loop(new EventLoop(std::move(*ring)));
  auto br = BufferRing::create(loop->ring_, options.buffers);
  if (!br) return std::unexpected(br.error());
  loop->buffers_ = std::move(*br);
  // Every provided buffer may sit in a send queue at once.
  loop->io_nodes_.reserve(loop->buffers_->count() + 256);
  const Features& f = features();
  loop->ext_arg_ = f.ext_arg;
  loop->wait_nr_ = options.wait_nr ? options.wait_nr : 1;
  loop->min_wait_usec_ = f.min_timeout ? options.min_wait_usec : 0;
  if (options.owners > 0)
    loop->slots_.reserve(std::min<size_t>(options.owners + 1, size_t{user_data::kMaxSlot} + 1));
  t_current = loop.get();
  return loop;
}

EventLoop::EventLoop(Ring ring)
    : ring_(std::move(ring)), ring_fd_(ring_.fd()), timers_(clock::refresh() / 1'000'000u) {
  slots_.resize(1);  // slot 0: the loop's own completions
  deferred_.reserve(64);
  running_deferred_.reserve(64);
  released_.reserve(64);
}

EventLoop::~EventLoop() {
  if (live_owners_ != 0) {
    EGW_LOG(warn, "event loop destroyed with {} owners still attached", live_owners_);
  }
  if (scratch_ && --scratch_->refs == 0) chunks_.destroy(scratch_);
  scratch_ = nullptr;
  if (write_tail_ && --write_tail_->refs == 0) chunks_.destroy(write_tail_);
  write_tail_ = nullptr;
  if (spill_ && --spill_->refs == 0) chunks_.destroy(spill_);
  spill_ = nullptr;
  buffers_.reset();
  if (t_current == this) t_current = nullptr;
}

EventLoop* EventLoop::current() {
  return t_current;
}

void EventLoop::attach(Owner& o) {
  EGW_ASSERT(o.slot_ == 0);
  uint32_t slot = free_slot_;
  if (slot != 0) {
    free_slot_ = slots_[slot].next_free;
  } else {
    EGW_RELEASE_ASSERT(slots_.size() <= user_data::kMaxSlot, "owner table full");
    slot = static_cast<uint32_t>(slots_.size());
    slots_.push_back(SlotEntry{nullptr, 1, 0});
  }
  slots_[slot].owner = &o;
  o.slot_ = slot;
  o.gen_ = slots_[slot].gen;
  o.retiring_ = false;
  o.released_queued_ = false;
  ++live_owners_;
}

void EventLoop::retire(Owner& o) {
  if (o.slot_ == 0 || o.retiring_) return;
  o.retiring_ = true;
  if (o.inflight_ == 0 && !o.released_queued_) {
    o.released_queued_ = true;
    released_.push_back(&o);
  }
}

io_uring_sqe* EventLoop::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(ring_.get());
  if (!s) {
    // SQ full: submit what is queued (no wait) and take a fresh one.
    ++counters_.sq_full_submits;
    const unsigned n = flush_sq();
    (void)enter(n, false);
    s = io_uring_get_sqe(ring_.get());
    EGW_RELEASE_ASSERT(s != nullptr, "no SQE after submitting a full SQ");
  }
  std::memset(s, 0, sizeof(*s));
  return s;
}

void EventLoop::reserve_sqes(unsigned n) {
  if (io_uring_sq_space_left(ring_.get()) >= n) return;
  ++counters_.sq_full_submits;
  (void)enter(flush_sq(), false);
}

void EventLoop::arm(Completion& c, io_uring_sqe* s) {
  Owner& o = c.owner();
  EGW_ASSERT(o.slot_ != 0);
  s->user_data = user_data::pack(o.slot_, o.gen_, c.index_, c.op_);
  ++c.inflight_;
  ++o.inflight_;
  ++counters_.sqes[static_cast<size_t>(c.op_)];
}

void EventLoop::arm_internal(io_uring_sqe* s, Op op) {
  s->user_data = user_data::pack(0, 1, 0, op);
  ++counters_.sqes[static_cast<size_t>(op)];
}

IoBuf EventLoop::share(const IoBuf& b, uint32_t off, uint32_t len) {
  EGW_ASSERT(off + len <= b.len);
  if (b.bid != BufferRing::kNoBuffer) {
    buffers_->ref(b.bid);
  } else if (b.chunk) {
    ++b.chunk->refs;
  }
  IoBuf out = b;
  out.data = b.data + off;
  out.len = len;
  return out;
}

void EventLoop::release(const IoBuf& b) {
  if (b.bid != BufferRing::kNoBuffer) {
    buffers_->unref(b.bid);
  } else if (b.chunk) {
    EGW_ASSERT(b.chunk->refs > 0);
    if (--b.chunk->refs == 0) chunks_.destroy(b.chunk);
  }
}

Chunk* EventLoop::new_chunk() {
  Chunk* c = chunks_.create();
  if (c) {
    c->refs = 1;
    c->used = 0;
  }
  return c;
}

IoBuf EventLoop::chunk_slice(Chunk* c, uint32_t off, uint32_t len) {
  EGW_ASSERT(off + len <= Chunk::kSize);
  ++c->refs;
  IoBuf b;
  b.data = c->data + off;
  b.len = len;
  b.chunk = c;
  return b;
}

IoBuf EventLoop::scratch(uint32_t n) {
  EGW_ASSERT(n <= 4096);
  if (!scratch_ || scratch_->used + n > Chunk::kSize) {
    if (scratch_ && --scratch_->refs == 0) chunks_.destroy(scratch_);
    scratch_ = new_chunk();
    if (!scratch_) return IoBuf{};
  }
  IoBuf b = chunk_slice(scratch_, scratch_->used, n);
  scratch_->used += n;
  return b;
}

Chunk* EventLoop::take_write_chunk(uint32_t* used) {
  if (Chunk* c = write_tail_) {
    write_tail_ = nullptr;
    *used = write_tail_used_;
    return c;
  }
  *used = 0;
  return new_chunk();
}

void EventLoop::give_back_write_chunk(Chunk* c, uint32_t used) {
  // Keep the room worth keeping: the larger of the two tails.
  constexpr uint32_t kMinRoom = 1024;
  if (used + kMinRoom <= Chunk::kSize && (!write_tail_ || used < write_tail_used_)) {
    std::swap(c, write_tail_);
    write_tail_used_ = used;
  }
  if (c && --c->refs == 0) chunks_.destroy(c);
}

IoBuf EventLoop::spill(const IoBuf& b) {
  if (b.bid == BufferRing::kNoBuffer || b.len == 0) return b;
  ++counters_.spills;
  if (!spill_ || spill_->used + b.len > Chunk::kSize) {
    if (spill_ && --spill_->refs == 0) chunks_.destroy(spill_);
    spill_ = new_chunk();
    if (!spill_) return b;  // no memory to move it to: it stays where it is
  }
  std::memcpy(spill_->data + spill_->used, b.data, b.len);
  const IoBuf out = chunk_slice(spill_, spill_->used, b.len);
  spill_->used += b.len;
  release(b);
  return out;
}

void EventLoop::park_enobufs(Owner& o, void (*rearm)(Owner&)) {
  EGW_ASSERT(o.slot_ != 0);
  ++counters_.enobufs;
  enobufs_.push_back(Parked{o.slot_, o.gen_, rearm});
}

EventLoop::ConnectArgs& EventLoop::connect_args() {
  io_uring_sq& sq = ring_.get()->sq;
  if (connect_args_used_ == connect_args_.size()) {
    ++counters_.sq_full_submits;
    (void)enter(flush_sq(), false);
  }
  // Every SQE queued so far has been taken in: nothing points here any more.
  if (io_uring_smp_load_acquire(sq.khead) == sq.sqe_tail) connect_args_used_ = 0;
  EGW_RELEASE_ASSERT(connect_args_used_ < connect_args_.size(),
                     "the kernel took no SQE in; connect arguments still in use");
  return connect_args_[connect_args_used_++];
}

void EventLoop::submit_connect(Completion& connect, Completion& timeout, int fd,
                               const SocketAddress& addr, uint32_t timeout_ms) {
  reserve_sqes(2);
  ConnectArgs& a = connect_args();
  a.addr = addr;
  a.ts = __kernel_timespec{static_cast<long long>(timeout_ms / 1000),
                           static_cast<long long>((timeout_ms % 1000) * 1'000'000)};
  io_uring_sqe* c = sqe();
  io_uring_sqe* t = sqe();
  io_uring_prep_connect(c, fd, a.addr.get(), a.addr.len());
  c->flags |= IOSQE_IO_LINK;
  io_uring_prep_link_timeout(t, &a.ts, 0);
  arm(connect, c);
  arm(timeout, t);
}

void EventLoop::defer(InlineFunction<void(), 32> fn) {
  deferred_.push_back(std::move(fn));
}

void EventLoop::schedule_flush(Flushable& f) {
  if (!f.flush_node_.linked()) flush_.push_back(f);
}

void EventLoop::dispatch(const io_uring_cqe& cqe) {
  ++counters_.cqes;
  const uint64_t ud = cqe.user_data;
  const uint32_t slot = user_data::slot(ud);
  if (slot == 0) {
    if (user_data::op(ud) == Op::kMsgRing && user_data::gen(ud) == 0) {
      ++counters_.doorbells;
      if (doorbell_) doorbell_(cqe.res);
    }
    return;  // internal fire-and-forget ops
  }
  if (slot >= slots_.size() || slots_[slot].owner == nullptr ||
      slots_[slot].gen != user_data::gen(ud)) {
    handle_stale(cqe);
    return;
  }
  Owner& o = *slots_[slot].owner;
  const uint8_t idx = user_data::index(ud);
  if (EGW_BUG(idx >= o.count_, "CQE names a completion its owner does not have")) return;
  Completion& c = o.completion(idx);
  if (!(cqe.flags & IORING_CQE_F_MORE)) {
    EGW_ASSERT(c.inflight_ > 0 && o.inflight_ > 0);
    --c.inflight_;
    --o.inflight_;
  }
  o.table_->handlers[idx].load(std::memory_order_relaxed)(o, cqe);
  if (o.retiring_ && o.inflight_ == 0 && !o.released_queued_) {
    o.released_queued_ = true;
    released_.push_back(&o);
  }
}

void EventLoop::handle_stale(const io_uring_cqe& cqe) {
  ++counters_.stale_cqes;
  buffers_->consume(cqe, nullptr, [&](uint16_t bid, uint8_t*, uint32_t) {
    ++counters_.stale_buffers;
    buffers_->release(bid);
  });
  EGW_LOG(debug, "stale completion dropped: op={} res={} flags=0x{:x}",
          to_string(user_data::op(cqe.user_data)), cqe.res, cqe.flags);
}

void EventLoop::release_retired() {
  // on_released() may retire further owners; they are appended and handled
  // in the same loop.
  while (!released_.empty()) {
    Owner* o = released_.back();
    released_.pop_back();
    SlotEntry& e = slots_[o->slot_];
    e.owner = nullptr;
    e.gen = (e.gen + 1) & user_data::kGenMask;
    if (e.gen == 0) e.gen = 1;
    e.next_free = free_slot_;
    free_slot_ = o->slot_;
    o->slot_ = 0;
    --live_owners_;
    o->on_released();  // may destroy *o
  }
}

void EventLoop::before_enter() {
  for (int round = 0; round < 8 && !deferred_.empty(); ++round) {
    running_deferred_.swap(deferred_);
    for (auto& fn : running_deferred_)
      fn();
    running_deferred_.clear();
  }
  if (enobufs_head_ < enobufs_.size()) {
    // Re-arm in FIFO order while buffers last; a receiver that runs dry again
    // parks itself at the back (and waits for the next round).
    const size_t end = enobufs_.size();
    const unsigned min_free = std::max(1u, std::min(kRearmMinFree, buffers_->count() / 8));
    while (enobufs_head_ < end && buffers_->free_count() >= min_free) {
      const Parked p = enobufs_[enobufs_head_++];  // rearm() may append
      const SlotEntry& e = slots_[p.slot];
      if (e.owner == nullptr || e.gen != p.gen) continue;  // released meanwhile
      ++counters_.rearms;
      p.rearm(*e.owner);
    }
    if (enobufs_head_ == enobufs_.size()) {
      enobufs_.clear();
      enobufs_head_ = 0;
    } else if (enobufs_head_ >= 256 && enobufs_head_ * 2 >= enobufs_.size()) {
      enobufs_.erase(enobufs_.begin(), enobufs_.begin() + static_cast<ptrdiff_t>(enobufs_head_));
      enobufs_head_ = 0;
    }
  }
  while (Flushable* f = flush_.pop_front())
    f->flush();
  buffers_->flush();
}

unsigned EventLoop::flush_sq() {
  io_uring_sq& sq = ring_.get()->sq;
  const unsigned tail = sq.sqe_tail;
  if (sq.sqe_head != tail) {
    sq.sqe_head = tail;
    io_uring_smp_store_release(sq.ktail, tail);
  }
  return tail - io_uring_smp_load_acquire(sq.khead);
}

Result<int> EventLoop::enter(unsigned to_submit, bool wait) {
  io_uring* r = ring_.get();
  unsigned flags = IORING_ENTER_GETEVENTS;
  unsigned wait_nr = 0;
  __kernel_timespec ts{};
  io_uring_getevents_arg arg{};
  arg.sigmask_sz = _NSIG / 8;
  if (wait) {
    wait_nr = wait_nr_;
    // The earlier of the wheel's next deadline and an explicit wake-up,
    // against a fresh clock (handling a batch may have taken a while).
    const uint64_t now_ns = clock::now_ns();
    uint64_t deadline_ns = UINT64_MAX;
    const uint64_t next_ms = timers_.next_deadline();
    if (next_ms != TimerWheel::kNever) deadline_ns = next_ms * 1'000'000u;
    deadline_ns = std::min(deadline_ns, wake_at_ns_);
    if (deadline_ns != UINT64_MAX) {
      const uint64_t ns = deadline_ns > now_ns ? deadline_ns - now_ns : 0;
      ts.tv_sec = static_cast<int64_t>(ns / 1'000'000'000u);
      ts.tv_nsec = static_cast<long long>(ns % 1'000'000'000u);
      if (ns == 0) wait_nr = 0;
    }
    if (ext_arg_) {
      if (deadline_ns != UINT64_MAX) arg.ts = reinterpret_cast<uint64_t>(&ts);
      if (wait_nr > 1) arg.pad = min_wait_usec_;
    } else if (deadline_ns != UINT64_MAX && wait_nr > 0) {
      // Pre-5.11 kernels: the deadline rides on a timeout SQE.
      io_uring_sqe* s = sqe();
      io_uring_prep_timeout(s, &ts, 1, 0);
      arm_internal(s, Op::kTimeout);
      to_submit = flush_sq();
    }
  }
  wake_at_ns_ = UINT64_MAX;
  int fd = r->ring_fd;
  if (ring_.registered_fd()) {
    fd = r->enter_ring_fd;
    flags |= IORING_ENTER_REGISTERED_RING;
  }
  int ret;
  ++counters_.enters;
  if (ext_arg_) {
    flags |= IORING_ENTER_EXT_ARG;
    ret = io_uring_enter2(static_cast<unsigned>(fd), to_submit, wait_nr, flags,
                          reinterpret_cast<sigset_t*>(&arg), sizeof(arg));
  } else {
    ret = io_uring_enter2(static_cast<unsigned>(fd), to_submit, wait_nr, flags, nullptr, _NSIG / 8);
  }
  if (ret < 0) {
    const int err = -ret;
    if (err == ETIME || err == EINTR || err == EBUSY || err == EAGAIN) return 0;
    return fail(err, "io_uring_enter");
  }
  return ret;
}

Result<unsigned> EventLoop::run_once(bool wait) {
  before_enter();
  const unsigned to_submit = flush_sq();
  const bool can_wait = wait && !stop_ && deferred_.empty() && released_.empty() && flush_.empty();
  auto rc = enter(to_submit, can_wait);
  if (!rc) return std::unexpected(rc.error());
  // Handlers schedule relative to the wheel's now(): bring it to the wake-up
  // time before they run (timers due meanwhile fire after the dispatch).
  timers_.observe(clock::refresh() / 1'000'000u);

  io_uring* r = ring_.get();
  unsigned n = 0;
  for (;;) {
    const unsigned head = *r->cq.khead;
    const unsigned tail = io_uring_smp_load_acquire(r->cq.ktail);
    if (head == tail) break;
    // Copy and advance before dispatching: handlers may submit (and so enter)
    // and must never see a half-consumed queue.
    const io_uring_cqe cqe = r->cq.cqes[head & r->cq.ring_mask];
    io_uring_smp_store_release(r->cq.khead, head + 1);
    dispatch(cqe);
    ++n;
  }
  if (r->cq.koverflow && *r->cq.koverflow != last_koverflow_) {
    counters_.cq_overflows += *r->cq.koverflow - last_koverflow_;
    last_koverflow_ = *r->cq.koverflow;
    EGW_LOG_RATELIMITED(error, 1000, "io_uring CQ overflowed ({} total); raise cq_entries",
                        counters_.cq_overflows);
  }
  counters_.timers_fired += timers_.advance(clock::cached_ns() / 1'000'000u);
  release_retired();
  return n;
}

Status EventLoop::run() {
  stop_ = false;
  while (!stop_) {
    auto rc = run_once(true);
    if (!rc) return std::unexpected(rc.error());
  }
  return {};
}

}  // namespace egw::uring
