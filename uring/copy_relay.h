// CopyRelay: the Relay over two StreamSockets. Each received provided buffer
// is queued, as is, on the other socket's send queue (no copy in user space
// beyond the kernel's recv/send), with back-pressure: a side whose peer's
// queue is full stops receiving until a send completes.
#pragma once

#include "uring/relay.h"
#include "uring/stream_socket.h"

namespace egw::uring {

class CopyRelay final : public Relay, private StreamSocketHandler {
 public:
  CopyRelay(EventLoop& loop, RelayHandler& handler);
  ~CopyRelay() override = default;

  void start(UniqueFd a, UniqueFd b) override;
  void close() override;
  uint64_t bytes_a_to_b() const override { return a_.bytes_received(); }
  uint64_t bytes_b_to_a() const override { return b_.bytes_received(); }
  uint64_t last_activity_ms() const override { return last_activity_ms_; }
  bool a_eof() const override { return a_eof_; }
  bool b_eof() const override { return b_eof_; }

 private:
  StreamSocket& peer(StreamSocket& s) { return &s == &a_ ? b_ : a_; }
  void on_connected(StreamSocket&, int) override {}
  void on_data(StreamSocket& s, const IoBuf& buf) override;
  void on_eof(StreamSocket& s) override;
  void on_error(StreamSocket& s, int err) override;
  void on_sent(StreamSocket& s) override;
  void on_released(StreamSocket& s) override;
  void check_done();
  void finish(int err);

  EventLoop& loop_;
  RelayHandler& handler_;
  StreamSocket a_, b_;
  uint64_t last_activity_ms_ = 0;
  bool a_eof_ = false;
  bool b_eof_ = false;
  bool done_ = false;
  bool closing_ = false;
  int released_ = 0;
};

}  // namespace egw::uring
