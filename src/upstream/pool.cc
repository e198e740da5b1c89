#include "src/upstream/pool.h"

namespace egw::upstream {

Pool::~Pool() {
  while (HttpConnection* c = idle_.pop_front())
    c->close();
}

HttpConnection* Pool::checkout(std::string_view proxy_header) {
  for (HttpConnection* c = idle_.back(); c;) {
    HttpConnection* prev = idle_.prev(*c);
    if (c->proxy_header() == proxy_header || c->closing()) {
      IntrusiveList<HttpConnection, &HttpConnection::pool_node_>::erase(*c);
      --idle_count_;
      loop_.timers().cancel(c->idle_timer_);
      if (!c->closing()) return c;
    }
    c = prev;
  }
  return nullptr;
}

void Pool::checkin(HttpConnection* c, uint32_t max_idle, uint32_t idle_timeout_ms) {
  c->set_user(nullptr);
  if (idle_count_ >= max_idle || !c->reusable()) {
    c->close();
    return;
  }
  // Its last user may have paused it (a client slower than the endpoint):
  // an idle connection must read, to notice a close, and the next exchange
  // must get its response.
  c->resume_recv();
  idle_.push_back(*c);
  ++idle_count_;
  c->idle_since_ms_ = loop_.now_ms();
  c->idle_timer_.set_callback([this, c] {
    remove(c);
    c->close();
  });
  loop_.timers().schedule_after(c->idle_timer_, idle_timeout_ms);
}

void Pool::remove(HttpConnection* c) {
  if (!c->pool_node_.linked()) return;
  IntrusiveList<HttpConnection, &HttpConnection::pool_node_>::erase(*c);
  --idle_count_;
  loop_.timers().cancel(c->idle_timer_);
}

}  // namespace egw::upstream
