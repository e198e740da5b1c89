// StreamSocket: a connected TCP (or Unix stream) socket driven by io_uring,
// the copy-path building block of every session:
//
//  - receive: multishot recv into the worker's provided-buffer ring (bundles
//    where the kernel has them; one-shot recv re-armed per completion where it
//    has no multishot). Each filled buffer goes to the handler as an IoBuf it
//    owns until release(). At most `max_held` buffers may be held at once;
//    past that the recv is cancelled and re-armed when the holder releases
//    (back-pressure, never a dropped byte). A bundle recv carries a byte
//    limit of what the socket may still hold, where the kernel takes one, so
//    one completion never takes more buffers than that from the shared ring.
//    -ENOBUFS parks the socket on the loop's re-arm queue.
//  - send: a queue of IoBufs (linked nodes from the worker's pool: a send never
//    fails for lack of room, so a bundle of any size can be forwarded) and one
//    send in flight, coalescing everything queued in a batch (up to 64
//    buffers per sendmsg), flushed just before the loop enters the kernel.
//    send_full() is the high watermark at which sources should pause. Large
//    contiguous sends can go as SEND_ZC.
//  - connect with a linked timeout (the loop keeps the address and the
//    timespec until the kernel has taken them in: the socket holds no
//    connect state); shutdown(SHUT_WR) once the queue drains;
//    close = cancel everything on the fd, then close it; the handler hears
//    on_released() once nothing is in flight, and only then may free it.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>

#include "egw/address.h"
#include "egw/result.h"
#include "egw/unique_fd.h"
#include "uring/event_loop.h"

namespace egw::uring {

class StreamSocket;

class StreamSocketHandler {
 public:
  // connect() finished: err 0, ETIMEDOUT (linked timeout fired) or an errno.
  virtual void on_connected(StreamSocket& s, int err) = 0;
  // New bytes; the handler owns `buf` until it calls StreamSocket::release().
  virtual void on_data(StreamSocket& s, const IoBuf& buf) = 0;
  // The peer finished sending (FIN). The socket stays open for sending.
  virtual void on_eof(StreamSocket& s) = 0;
  // recv or send failed (ECONNRESET, EPIPE, ...). The handler should close.
  virtual void on_error(StreamSocket& s, int err) = 0;
  // A send completed; the queue has room again (resume what feeds it).
  virtual void on_sent(StreamSocket& s) = 0;
  // Closed and nothing in flight: the socket may now be destroyed.
  virtual void on_released(StreamSocket& s) = 0;

 protected:
  ~StreamSocketHandler() = default;
};

class StreamSocket final : public Owner, public Flushable, public BufferOwner {
 public:
  // Back-pressure watermark: send_full() once this much is queued.
  static constexpr unsigned kHighWaterBufs = 16;
  static constexpr size_t kHighWaterBytes = 256 * 1024;
  static constexpr uint32_t kZcThreshold = 64 * 1024;

  StreamSocket(EventLoop& loop, StreamSocketHandler& handler);
  ~StreamSocket() override;

  // Adopts a connected socket. The socket is attached to the loop.
  void open(UniqueFd fd);
  // Creates a socket and connects it to `addr`; on_connected() reports.
  Status connect(const SocketAddress& addr, uint32_t timeout_ms);

  // -- receive --------------------------------------------------------------
  void start_recv();
  // Stops delivering new buffers (what is already in flight may still come).
  void pause_recv();
  void resume_recv();
  bool recv_paused() const { return recv_paused_; }
  // Gives back an IoBuf (any kind) on the calling thread's loop. Static: the
  // IoBuf knows what it refers to.
  static void release(const IoBuf& buf);
  unsigned held() const { return held_; }
  void set_max_held(unsigned n) { max_held_ = n ? n : 1; }

  // -- send -----------------------------------------------------------------
  // Queues `buf` (its memory must live until sent); false only when the
  // socket is closing or its write side is shut, in which case ownership
  // stays with the caller. Provided buffers are released once sent.
  bool send(const IoBuf& buf);
  // At or above the high watermark: the caller should stop feeding it.
  bool send_full() const { return count_ >= kHighWaterBufs || queued_bytes_ >= kHighWaterBytes; }
  size_t queued_bytes() const { return queued_bytes_; }
  bool send_idle() const { return count_ == 0 && !send_.busy(); }
  // After the queue drains, shutdown(SHUT_WR): the peer sees FIN.
  void shutdown_write();
  bool write_shut() const { return shut_sent_; }
  void enable_zero_copy(bool on) { zc_enabled_ = on; }

  // -- teardown -------------------------------------------------------------
  // Cancels what is in flight, releases queued buffers, closes the fd;
  // on_released() follows once nothing is in flight. Idempotent.
  void close();
  // Like close(), but the peer sees a reset (SO_LINGER 0) instead of FIN.
  void abort();
  bool closing() const { return closing_; }

  int fd() const { return fd_.get(); }
  EventLoop& loop() const { return loop_; }
  uint64_t bytes_received() const { return bytes_in_; }
  uint64_t bytes_sent() const { return bytes_out_; }
  uint32_t zc_sends() const { return zc_sends_; }
  uint32_t zc_copied() const { return zc_copied_; }

 private:
  void on_recv(const io_uring_cqe& cqe);
  void on_send(const io_uring_cqe& cqe);
  void on_send_zc(const io_uring_cqe& cqe);
  void on_connect(const io_uring_cqe& cqe);
  void on_link_timeout(const io_uring_cqe& cqe);
  void on_cancel(const io_uring_cqe& cqe);
  void on_pollout(const io_uring_cqe& cqe);
  void on_close(const io_uring_cqe& cqe);
  void on_released() override;
  void on_buffer_freed() override;
  void flush() override;
  void rearm();

  void arm_recv();
  void cancel_recv();
  void sent(uint32_t bytes);
  void release_queue();
  void maybe_shutdown();
  void pop_front();

  // Members are ordered by size, so that the object has no holes (one of
  // these per client connection, idle or not).
  EventLoop& loop_;
  StreamSocketHandler& handler_;

  // send queue
  IoBufNode* head_ = nullptr;
  IoBufNode** tail_ = &head_;
  IovBlock* iov_ = nullptr;  // held while a multi-buffer sendmsg is in flight
  size_t queued_bytes_ = 0;

  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;

  UniqueFd fd_;
  Completion recv_, send_, send_zc_, connect_, link_timeout_, cancel_, close_, pollout_;

  unsigned held_ = 0;  // received buffers the handler still holds
  unsigned max_held_ = 8;
  unsigned count_ = 0;        // queued buffers
  uint32_t head_offset_ = 0;  // bytes of head_ already sent
  uint32_t zc_pending_bytes_ = 0;
  uint32_t zc_sends_ = 0;  // on this socket, for the copied-too-often test
  uint32_t zc_copied_ = 0;

  // receive state
  bool recv_started_ = false;
  bool recv_paused_ = false;
  bool recv_eof_ = false;
  bool recv_cancel_pending_ = false;
  bool recv_limited_ = false;  // the armed bundle recv carries a byte limit
  bool parked_ = false;        // on the loop's ENOBUFS queue
  bool multishot_;
  bool bundle_;
  // send state
  bool shut_wanted_ = false;
  bool shut_sent_ = false;
  bool zc_enabled_ = false;
  bool zc_notif_pending_ = false;

  bool closing_ = false;
};

}  // namespace egw::uring
