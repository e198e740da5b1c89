#include "uring/stream_socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "egw/log.h"
#include "uring/compat.h"
#include "uring/net.h"
#include "uring/probe.h"

namespace egw::uring {

// One per client connection, idle or not: keep it small (the idle
// connection figure in docs/benchmarks.md counts every byte).
static_assert(sizeof(StreamSocket) <= 240);

namespace {

// Whether this kernel takes a byte limit on a multishot bundle recv (newer
// kernels do; older ones refuse multishot recv with a length, EINVAL). The
// limit keeps one bundle from taking more buffers than the socket may hold:
// without it a connection whose peer has megabytes queued takes that many
// buffers from the shared ring at once, and a few slow readers can starve
// every other connection of the worker. Learned at the first refusal.
thread_local bool t_bundle_limit = true;

}  // namespace

StreamSocket::StreamSocket(EventLoop& loop, StreamSocketHandler& handler)
    : loop_(loop),
      handler_(handler),
      multishot_(features().multishot_recv),
      bundle_(features().recv_bundle) {
  bind<&StreamSocket::on_recv>(recv_, Op::kRecv);
  bind<&StreamSocket::on_send>(send_, Op::kSend);
  bind<&StreamSocket::on_send_zc>(send_zc_, Op::kSendZc);
  bind<&StreamSocket::on_connect>(connect_, Op::kConnect);
  bind<&StreamSocket::on_link_timeout>(link_timeout_, Op::kLinkTimeout);
  bind<&StreamSocket::on_cancel>(cancel_, Op::kCancel);
  bind<&StreamSocket::on_pollout>(pollout_, Op::kPoll);
  bind<&StreamSocket::on_close>(close_, Op::kClose);
}

StreamSocket::~StreamSocket() {
  if (held_ > 0) loop_.buffers().disown(this);
  EGW_ASSERT(!attached());
  EGW_ASSERT(count_ == 0);
  EGW_ASSERT(iov_ == nullptr);
}

void StreamSocket::open(UniqueFd fd) {
  fd_ = std::move(fd);
  loop_.attach(*this);
}

Status StreamSocket::connect(const SocketAddress& addr, uint32_t timeout_ms) {
  auto fd = tcp_socket(addr.family());
  if (!fd) return std::unexpected(fd.error());
  fd_ = std::move(*fd);
  loop_.attach(*this);
  loop_.submit_connect(connect_, link_timeout_, fd_.get(), addr, timeout_ms);
  return {};
}

void StreamSocket::on_connect(const io_uring_cqe& cqe) {
  if (closing_) return;
  int err = cqe.res < 0 ? -cqe.res : 0;
  // We never cancel a connect except by close(): ECANCELED here means the
  // linked timeout fired (its own CQE may come before or after this one).
  if (err == ECANCELED || err == ETIME) err = ETIMEDOUT;
  if (err == 0) tune_tcp(fd_.get());
  handler_.on_connected(*this, err);
}

void StreamSocket::on_link_timeout(const io_uring_cqe&) {}

// -- receive -----------------------------------------------------------------

void StreamSocket::start_recv() {
  recv_started_ = true;
  arm_recv();
}

void StreamSocket::pause_recv() {
  recv_paused_ = true;
  cancel_recv();
}

void StreamSocket::resume_recv() {
  recv_paused_ = false;
  arm_recv();
}

void StreamSocket::arm_recv() {
  if (!recv_started_ || recv_paused_ || recv_eof_ || closing_ || held_ >= max_held_) return;
  if (recv_.busy() || parked_) return;
  io_uring_sqe* s = loop_.sqe();
  if (multishot_) {
    io_uring_prep_recv_multishot(s, fd_.get(), nullptr, 0, 0);
  } else {
    io_uring_prep_recv(s, fd_.get(), nullptr, 0, 0);
  }
  recv_limited_ = false;
  if (bundle_) {
    s->ioprio |= IORING_RECVSEND_BUNDLE;
    if (t_bundle_limit && multishot_) {
      s->len = (max_held_ - held_) * loop_.buffers().buffer_size();
      recv_limited_ = true;
    }
  }
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = loop_.buffers().group_id();
  loop_.arm(recv_, s);
}

void StreamSocket::cancel_recv() {
  if (!recv_.busy() || recv_cancel_pending_ || !multishot_) return;
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_cancel64(s, recv_.user_data(), 0);
  loop_.arm(cancel_, s);
  recv_cancel_pending_ = true;
}

void StreamSocket::rearm() {
  if (!parked_) return;
  parked_ = false;
  arm_recv();
}

void StreamSocket::on_recv(const io_uring_cqe& cqe) {
  const bool final = !(cqe.flags & IORING_CQE_F_MORE);
  if (final) recv_cancel_pending_ = false;
  loop_.buffers().consume(cqe, this, [&](uint16_t bid, uint8_t* data, uint32_t len) {
    ++held_;
    bytes_in_ += len;
    IoBuf buf{data, len, bid, nullptr};
    if (closing_ || len == 0) {
      loop_.release(buf);
    } else {
      handler_.on_data(*this, buf);  // may pause, send, or close
    }
  });
  if (closing_) return;
  if (cqe.res == 0) {
    recv_eof_ = true;
    handler_.on_eof(*this);
    return;
  }
  if (cqe.res < 0) {
    const int err = -cqe.res;
    if (err == ENOBUFS) {
      // The socket keeps its bytes; come back when buffers are free.
      if (final && !recv_paused_ && !parked_) {
        parked_ = true;
        loop_.park_enobufs(*this, [](Owner& o) { static_cast<StreamSocket&>(o).rearm(); });
      }
      return;
    }
    if (err == EINVAL && recv_limited_) {
      // This kernel wants no length on a multishot recv: bundles go
      // unlimited (the per-socket cap is then checked per completion).
      t_bundle_limit = false;
      recv_limited_ = false;
      if (final) arm_recv();
      return;
    }
    if (err == ECANCELED || err == EAGAIN) {
      // Cancelled by a pause (and maybe resumed since), or an O_NONBLOCK
      // socket answered an attempt io_uring made outside its poll loop.
      if (final) arm_recv();
      return;
    }
    handler_.on_error(*this, err);
    return;
  }
  if (held_ >= max_held_) {
    cancel_recv();  // cap reached: stop the multishot until buffers come back
  } else if (final) {
    arm_recv();
  }
}

void StreamSocket::release(const IoBuf& buf) {
  EventLoop::current()->release(buf);
}

void StreamSocket::on_buffer_freed() {
  EGW_ASSERT(held_ > 0);
  --held_;
  // Hysteresis: re-arm once half the cap is free again.
  if (!recv_.busy() && held_ <= max_held_ / 2) arm_recv();
}

// -- send --------------------------------------------------------------------

bool StreamSocket::send(const IoBuf& buf) {
  if (closing_ || shut_wanted_) return false;
  IoBufNode* n = loop_.io_nodes().create();
  EGW_RELEASE_ASSERT(n != nullptr, "io node pool exhausted");
  n->buf = buf;
  *tail_ = n;
  tail_ = &n->next;
  ++count_;
  queued_bytes_ += buf.len;
  if (!send_.busy() && !send_zc_.busy()) loop_.schedule_flush(*this);
  return true;
}

void StreamSocket::pop_front() {
  IoBufNode* n = head_;
  head_ = n->next;
  if (!head_) tail_ = &head_;
  --count_;
  head_offset_ = 0;
  loop_.release(n->buf);
  loop_.io_nodes().destroy(n);
}

void StreamSocket::flush() {
  if (closing_ || send_.busy() || send_zc_.busy() || pollout_.busy()) return;
  if (count_ == 0) {
    maybe_shutdown();
    return;
  }
  const IoBuf& first = head_->buf;
  const uint32_t first_left = first.len - head_offset_;
  const uint8_t* p = first.data + head_offset_;
  if (zc_enabled_ && first_left >= kZcThreshold) {
    io_uring_sqe* s = loop_.sqe();
    BufferRing& br = loop_.buffers();
    const uint8_t* base = br.data(0);
    const bool fixed = br.registered() && p >= base &&
                       p + first_left <= base + size_t{br.count()} * br.buffer_size();
    if (fixed) {
      io_uring_prep_send_zc_fixed(s, fd_.get(), p, first_left, MSG_NOSIGNAL | MSG_WAITALL,
                                  IORING_SEND_ZC_REPORT_USAGE, BufferRing::kFixedIndex);
    } else {
      io_uring_prep_send_zc(s, fd_.get(), p, first_left, MSG_NOSIGNAL | MSG_WAITALL,
                            IORING_SEND_ZC_REPORT_USAGE);
    }
    zc_notif_pending_ = false;
    ++zc_sends_;
    loop_.arm(send_zc_, s);
    return;
  }
  io_uring_sqe* s = loop_.sqe();
  // The last bytes before a wanted FIN go corked (MSG_MORE): the inline
  // shutdown after their completion then sends the tail and the FIN in one
  // segment, which spares the peer an ACK and a wake-up per closed
  // connection. A short send leaves the rest queued, sent the same way.
  const bool last = shut_wanted_ && count_ <= IovBlock::kMax;
  const int flags = MSG_NOSIGNAL | MSG_WAITALL | (last ? MSG_MORE : 0);
  if (count_ == 1) {
    // One buffer: plain send, no msghdr to import.
    io_uring_prep_send(s, fd_.get(), p, first_left, flags);
  } else {
    iov_ = loop_.iov_blocks().create();
    EGW_RELEASE_ASSERT(iov_ != nullptr, "iovec pool exhausted");
    unsigned n = 0;
    for (IoBufNode* b = head_; b && n < IovBlock::kMax; b = b->next, ++n) {
      const uint32_t off = n == 0 ? head_offset_ : 0;
      iov_->iov[n].iov_base = const_cast<uint8_t*>(b->buf.data + off);
      iov_->iov[n].iov_len = b->buf.len - off;
    }
    iov_->msg = msghdr{};
    iov_->msg.msg_iov = iov_->iov;
    iov_->msg.msg_iovlen = n;
    io_uring_prep_sendmsg(s, fd_.get(), &iov_->msg, flags);
  }
  loop_.arm(send_, s);
}

void StreamSocket::on_send(const io_uring_cqe& cqe) {
  if (iov_) {
    loop_.iov_blocks().destroy(iov_);
    iov_ = nullptr;
  }
  if (closing_) {
    release_queue();
    return;
  }
  if (cqe.res == -EAGAIN) {
    // The socket is O_NONBLOCK (splice needs it) and this attempt ran where
    // io_uring does not wait: wait for room ourselves, then send again.
    io_uring_sqe* s = loop_.sqe();
    io_uring_prep_poll_add(s, fd_.get(), POLLOUT);
    loop_.arm(pollout_, s);
    return;
  }
  if (cqe.res < 0) {
    handler_.on_error(*this, -cqe.res);
    return;
  }
  sent(static_cast<uint32_t>(cqe.res));
}

void StreamSocket::on_pollout(const io_uring_cqe&) {
  if (!closing_) flush();
}

void StreamSocket::on_send_zc(const io_uring_cqe& cqe) {
  if (cqe.flags & IORING_CQE_F_NOTIF) {
    // The kernel no longer references the memory: now it may be released.
    if (static_cast<uint32_t>(cqe.res) & IORING_NOTIF_USAGE_ZC_COPIED) {
      ++zc_copied_;
      // Loopback (and some NICs) copy anyway; then ZC only costs. Stop.
      if (zc_copied_ >= 4 && zc_copied_ * 2 >= zc_sends_) zc_enabled_ = false;
    }
    zc_notif_pending_ = false;
    if (closing_) {
      release_queue();
      return;
    }
    sent(zc_pending_bytes_);
    return;
  }
  // The send itself. With F_MORE a notification follows; the bytes are
  // accounted then.
  if (cqe.res < 0) {
    if (!closing_)
      handler_.on_error(*this, -cqe.res);
    else if (!(cqe.flags & IORING_CQE_F_MORE))
      release_queue();
    return;
  }
  zc_pending_bytes_ = static_cast<uint32_t>(cqe.res);
  if (cqe.flags & IORING_CQE_F_MORE) {
    zc_notif_pending_ = true;
    return;
  }
  if (closing_) {
    release_queue();
    return;
  }
  sent(zc_pending_bytes_);
}

void StreamSocket::sent(uint32_t bytes) {
  bytes_out_ += bytes;
  queued_bytes_ -= bytes;
  while (bytes > 0 && count_ > 0) {
    const uint32_t left = head_->buf.len - head_offset_;
    if (bytes < left) {
      head_offset_ += bytes;
      break;
    }
    bytes -= left;
    pop_front();
  }
  if (count_ > 0) {
    loop_.schedule_flush(*this);
  } else {
    maybe_shutdown();
  }
  handler_.on_sent(*this);
}

void StreamSocket::release_queue() {
  while (count_ > 0)
    pop_front();
  queued_bytes_ = 0;
}

void StreamSocket::shutdown_write() {
  if (closing_ || shut_wanted_) return;
  shut_wanted_ = true;
  maybe_shutdown();
}

void StreamSocket::maybe_shutdown() {
  if (!shut_wanted_ || shut_sent_ || count_ > 0 || send_.busy() || send_zc_.busy() || closing_) {
    return;
  }
  // Inline, not IORING_OP_SHUTDOWN: that op is always punted to io-wq and
  // looks its descriptor up only when it runs, by which time a close of this
  // socket may have completed and the number been reused by a new connection
  // (seen as EPIPE on an unrelated upstream under load).
  ::shutdown(fd_.get(), SHUT_WR);
  shut_sent_ = true;
}

// -- teardown ----------------------------------------------------------------

void StreamSocket::abort() {
  if (!closing_ && fd_) {
    linger lg{1, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  close();
}

void StreamSocket::close() {
  if (closing_) return;
  closing_ = true;
  parked_ = false;
  flush_node_unlink();
  if (!send_.busy() && !send_zc_.busy()) release_queue();
  if (!attached()) {
    // Never opened (connect() failed before a socket existed).
    loop_.defer([this] { handler_.on_released(*this); });
    return;
  }
  if (fd_) {
    const int fd = fd_.release();
    if (inflight() > 0) {
      // A pending multishot recv survives a bare close (research notes §4):
      // cancel everything on the fd first, then close, in one hard link.
      loop_.reserve_sqes(2);
      io_uring_sqe* c = loop_.sqe();
      io_uring_prep_cancel_fd(c, fd, IORING_ASYNC_CANCEL_ALL);
      c->flags |= IOSQE_IO_HARDLINK;
      loop_.arm(cancel_, c);
    }
    io_uring_sqe* s = loop_.sqe();
    io_uring_prep_close(s, fd);
    loop_.arm(close_, s);
  }
  loop_.retire(*this);
}

void StreamSocket::on_cancel(const io_uring_cqe&) {}
void StreamSocket::on_close(const io_uring_cqe&) {}

void StreamSocket::on_released() {
  handler_.on_released(*this);
}

}  // namespace egw::uring
