#include "uring/connector.h"

#include "uring/net.h"

namespace egw::uring {

Connector::Connector(EventLoop& loop, ConnectorHandler& handler) : loop_(loop), handler_(handler) {
  bind<&Connector::on_connect>(connect_, Op::kConnect);
  bind<&Connector::on_timeout>(timeout_, Op::kLinkTimeout);
  bind<&Connector::on_cancel>(cancel_, Op::kCancel);
}

Connector::~Connector() {
  EGW_ASSERT(!attached());
}

Status Connector::connect(const SocketAddress& addr, uint32_t timeout_ms) {
  EGW_ASSERT(!connecting_ && !closing_);
  auto fd = tcp_socket(addr.family());
  if (!fd) return std::unexpected(fd.error());
  fd_ = std::move(*fd);
  if (!attached()) loop_.attach(*this);
  loop_.submit_connect(connect_, timeout_, fd_.get(), addr, timeout_ms);
  connecting_ = true;
  return {};
}

void Connector::on_connect(const io_uring_cqe& cqe) {
  connecting_ = false;
  if (closing_) {
    fd_.reset();
    return;
  }
  int err = cqe.res < 0 ? -cqe.res : 0;
  // Only the linked timeout cancels a connect (close() sets closing_ first).
  if (err == ECANCELED || err == ETIME) err = ETIMEDOUT;
  if (err == 0) {
    tune_tcp(fd_.get());
  } else {
    fd_.reset();
  }
  handler_.on_connect_done(*this, err);
}

void Connector::on_timeout(const io_uring_cqe&) {}
void Connector::on_cancel(const io_uring_cqe&) {}

void Connector::close() {
  if (closing_) return;
  closing_ = true;
  if (!attached()) {
    loop_.defer([this] { handler_.on_connector_released(*this); });
    return;
  }
  if (connecting_) {
    io_uring_sqe* s = loop_.sqe();
    io_uring_prep_cancel64(s, connect_.user_data(), 0);
    loop_.arm(cancel_, s);
  } else {
    fd_.reset();
  }
  loop_.retire(*this);
}

void Connector::on_released() {
  fd_.reset();
  handler_.on_connector_released(*this);
}

}  // namespace egw::uring
