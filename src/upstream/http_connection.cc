#include "src/upstream/http_connection.h"

#include <cstring>

#include "egw/log.h"
#include "proto/h1/encoder.h"
#include "src/http/h1_body.h"
#include "src/http/h1_heads.h"
#include "src/net/proxy_header.h"
#include "src/upstream/endpoint.h"
#include "src/upstream/pool.h"

namespace egw::upstream {

namespace h1 = proto::h1;

HttpConnection::HttpConnection(uring::EventLoop& loop, SlabPool<HeaderBlock>& headers,
                               SlabPool<HttpConnection>& home,
                               std::shared_ptr<EndpointState> endpoint, Pool* pool)
    : loop_(loop),
      header_pool_(headers),
      home_(home),
      endpoint_(std::move(endpoint)),
      pool_(pool),
      sock_(loop, *this),
      in_(loop),
      head_buf_(loop) {}

HttpConnection::~HttpConnection() {
  release_head_storage();
}

Status HttpConnection::connect(uint32_t timeout_ms, tls::ClientContext* tls) {
  phase_ = Phase::kConnecting;
  std::unique_ptr<tls::Session> session;
  if (tls) {
    const tls::SavedSession* resume = pool_ ? pool_->tls_resume.get() : nullptr;
    resume_offered_ = resume != nullptr;
    session = tls::Session::client(*tls, {}, resume);
    if (!session) return egw::fail(ENOMEM, "cannot create a TLS session");
  }
  return sock_.connect(endpoint_->address(), timeout_ms, std::move(session));
}

void HttpConnection::on_connected(net::ByteStream&) {
  if (proxy_header_.empty() || closing_) return;
  // Before any byte of ours (the TLS ClientHello follows it).
  const auto* p = reinterpret_cast<const uint8_t*>(proxy_header_.data());
  if (!net::write_proxy_header(sock_.socket().fd(), std::span(p, proxy_header_.size()))) {
    const int err = errno;
    EGW_LOG_RATELIMITED(warn, 1000, "endpoint {}: cannot write the PROXY header: {}",
                        endpoint_->label(), std::strerror(err));
    on_error(sock_, err);
  }
}

void HttpConnection::on_ready(net::ByteStream&) {
  if (closing_) return;
  phase_ = Phase::kIdle;
  if (user_) user_->on_upstream_connected(*this, 0);
}

bool HttpConnection::send(const uring::IoBuf& b) {
  if (closing_) {
    loop_.release(b);
    return true;
  }
  if (!sock_.send(b)) broken_ = true;  // a failed stream reports why on its own
  return true;
}

void HttpConnection::shutdown_write() {
  sock_.shutdown();
}

bool HttpConnection::send_request(const proto::http::RequestHead& req,
                                  const http::RequestContext& ctx) {
  uring::Chunk* chunk = loop_.new_chunk();
  if (!chunk) return false;
  const size_t n = http::write_upstream_request(req, ctx, reinterpret_cast<char*>(chunk->data),
                                                uring::Chunk::kSize);
  uring::IoBuf own;
  own.chunk = chunk;
  if (n == 0) {
    loop_.release(own);
    return false;
  }
  begin(req.method);
  chunked_request_ = req.body == proto::http::Body::kUnknown;
  send(loop_.chunk_slice(chunk, 0, static_cast<uint32_t>(n)));
  loop_.release(own);
  return true;
}

bool HttpConnection::send_body(const uring::IoBuf& b) {
  if (!chunked_request_) {
    if (!send(b)) loop_.release(b);
    return true;
  }
  uring::IoBuf hdr = loop_.scratch(h1::kMaxChunkHeaderSize);
  if (!hdr.data) {
    loop_.release(b);
    broken_ = true;
    return false;
  }
  hdr.len = static_cast<uint32_t>(
      h1::write_chunk_header(b.len, reinterpret_cast<char*>(const_cast<uint8_t*>(hdr.data))));
  if (!send(hdr)) loop_.release(hdr);
  if (!send(b)) loop_.release(b);
  uring::IoBuf crlf;
  crlf.data = reinterpret_cast<const uint8_t*>(h1::kCrlf.data());
  crlf.len = static_cast<uint32_t>(h1::kCrlf.size());
  send(crlf);
  return true;
}

bool HttpConnection::end_body(std::span<const proto::http::Field> trailers) {
  if (!chunked_request_) return true;
  const uring::IoBuf last = http::encode_last_chunk(loop_, trailers);
  if (!last.data) {
    broken_ = true;
    return false;
  }
  if (!send(last)) loop_.release(last);
  return true;
}

void HttpConnection::pause_recv() {
  paused_ = true;
  sock_.pause_recv();
}

void HttpConnection::resume_recv() {
  paused_ = false;
  sock_.resume_recv();
  if (closing_) return;
  if (!in_.empty()) process();
  if (eof_waiting_ && !closing_ && in_.empty()) {
    eof_waiting_ = false;
    handle_eof();
  }
}

void HttpConnection::begin(h1::Method method) {
  paused_ = false;
  sock_.resume_recv();  // whatever the last exchange left paused
  method_ = method;
  phase_ = Phase::kHead;
  response_started_ = false;
  keep_alive_ = false;
  // Anything already queued arrived unasked: the server is misbehaving.
  if (!in_.empty()) broken_ = true;
}

void HttpConnection::set_tunnel() {
  phase_ = Phase::kTunnel;
  broken_ = true;  // never back to a pool
  release_head_storage();
}

void HttpConnection::release(bool clean, uint32_t max_idle, uint32_t idle_timeout_ms) {
  if (clean && reusable() && pool_) {
    pool_->checkin(this, max_idle, idle_timeout_ms);
  } else {
    close();
  }
}

bool HttpConnection::reusable() const {
  return phase_ == Phase::kDone && keep_alive_ && !broken_ && !eof_ && !closing_ && in_.empty() &&
         sock_.send_idle() && !sock_.write_shut();
}

void HttpConnection::release_head_storage() {
  parser_.reset();
  if (header_block_) {
    header_pool_.destroy(header_block_);
    header_block_ = nullptr;
  }
  head_buf_.reset();
}

void HttpConnection::on_data(net::ByteStream&, const uring::IoBuf& buf) {
  in_.push_back(buf);
  if (!closing_ && !paused_) process();
}

// Runs the response state machine over what is queued. A user callback may
// close this connection: every step re-checks closing_.
void HttpConnection::process() {
  while (!closing_ && !paused_ && !in_.empty()) {
    switch (phase_) {
      case Phase::kConnecting:
      case Phase::kIdle:
      case Phase::kDone:
        // Bytes nobody asked for: this connection can never be trusted again.
        broken_ = true;
        in_.clear();
        if (!user_) {
          if (pool_) pool_->remove(this);
          close();
        }
        return;
      case Phase::kHead: {
        if (!parser_) {
          header_block_ = header_pool_.create();
          if (!header_block_) {
            fail(HttpError::kBadResponse, ENOMEM);
            return;
          }
          h1::Limits limits;
          limits.max_head_bytes = kMaxResponseHeadBytes;
          limits.max_headers = HeaderBlock::kCapacity;
          parser_.emplace(limits, header_block_->headers.span());
        }
        bool full = false;
        const std::string_view view = head_buf_.gather(in_, &full);
        if (view.empty()) return;
        const h1::ParseStatus st = parser_->parse(view, method_);
        if (st == h1::ParseStatus::kError) {
          EGW_LOG_RATELIMITED(warn, 1000, "endpoint {}: invalid response: {}", endpoint_->label(),
                              h1::to_string(parser_->error()));
          fail(HttpError::kBadResponse, 0);
          return;
        }
        if (st == h1::ParseStatus::kIncomplete) {
          if (full) fail(HttpError::kBadResponse, 0);
          return;
        }
        response_started_ = true;
        const uring::IoBuf head_mem = head_buf_.finish(in_, parser_->head_size());
        const h1::ResponseHead& head = parser_->head();
        const bool informational = head.status < 200 && head.status != 101;
        const bool upgrade = head.status == 101;
        if (!informational && !upgrade) {
          keep_alive_ = head.keep_alive;
          body_.start(head.body, head.content_length);
          phase_ = Phase::kBody;
        }
        if (user_) user_->on_response_head(*this, head.neutral());
        loop_.release(head_mem);
        release_head_storage();
        if (closing_) return;
        if (upgrade) {
          set_tunnel();
        } else if (informational) {
          phase_ = Phase::kHead;  // the final response follows
        }
        break;
      }
      case Phase::kBody: {
        using Kind = http::BodyStep::Kind;
        http::BodyStep step = http::next_body_step(loop_, body_, in_, trailers_);
        switch (step.kind) {
          case Kind::kData:
            user_->on_response_data(*this, step.data);
            break;
          case Kind::kProgress:
          case Kind::kNeedMore:
            break;
          case Kind::kTrailersTooLarge:
            fail(HttpError::kBadResponse, ENOMEM);
            return;
          case Kind::kDone:
            if (!in_.empty()) broken_ = true;  // more than the response: never reuse
            in_.clear();
            end_response();
            return;
          case Kind::kError:
            EGW_LOG_RATELIMITED(warn, 1000, "endpoint {}: invalid response body: {}",
                                endpoint_->label(), h1::to_string(body_.error()));
            fail(HttpError::kBadResponse, 0);
            return;
        }
        break;
      }
      case Phase::kTunnel:
        user_->on_response_data(*this, in_.take_front());
        break;
    }
  }
  // A body that ends exactly at the end of a buffer is seen as done on the
  // next (empty) feed.
  if (!closing_ && phase_ == Phase::kBody && in_.empty() &&
      http::next_body_step(loop_, body_, in_, trailers_).kind == http::BodyStep::Kind::kDone) {
    end_response();
  }
}

void HttpConnection::end_response() {
  phase_ = Phase::kDone;
  ++exchanges_;
  save_tls();
  if (!trailers_.empty()) {
    const bool ok = trailers_.deliver([this](std::span<const proto::http::Field> t) {
      if (user_) user_->on_response_trailers(*this, t);
    });
    if (!ok) {
      EGW_LOG_RATELIMITED(warn, 1000, "endpoint {}: too many trailer fields", endpoint_->label());
      fail(HttpError::kBadResponse, 0);
      return;
    }
    if (closing_ || !user_) return;
  }
  user_->on_response_end(*this);
}

void HttpConnection::save_tls() {
  // Once per connection, after a whole exchange (TLS 1.3 tickets arrive
  // after the handshake): the next new connection offers it.
  tls::Session* t = sock_.tls_session();
  if (!t || tls_saved_ || !pool_) return;
  tls_saved_ = true;
  if (auto s = t->save()) pool_->tls_resume = std::move(s);
}

void HttpConnection::on_eof(net::ByteStream&) {
  eof_ = true;
  if (closing_) return;
  if (paused_ && !in_.empty()) {
    eof_waiting_ = true;  // deliver what came before it first
    return;
  }
  handle_eof();
}

void HttpConnection::handle_eof() {
  switch (phase_) {
    case Phase::kTunnel:
      if (user_) user_->on_tunnel_eof(*this);
      return;
    case Phase::kBody:
      if (body_.end_of_input()) {
        // A body delimited by the close: complete.
        phase_ = Phase::kDone;
        ++exchanges_;
        user_->on_response_end(*this);
        return;
      }
      fail(HttpError::kTruncated, EPIPE);
      return;
    case Phase::kHead:
      fail(response_started_ ? HttpError::kTruncated : HttpError::kReset, ECONNRESET);
      return;
    default:
      if (!user_) {
        if (pool_) pool_->remove(this);
        close();
      }
      return;
  }
}

void HttpConnection::on_error(net::ByteStream&, int err) {
  broken_ = true;
  if (closing_) return;
  const bool tls_failed = sock_.is_tls() && (err == EPROTO || !sock_.handshake_done());
  if (tls_failed && phase_ == Phase::kConnecting) {
    // The handshake failed (or the endpoint closed during it): reported as
    // EPROTO with the reason; a rejected resumption must not poison the
    // next connections.
    tls_error_ =
        sock_.error().empty() ? std::string(std::strerror(err)) : std::string(sock_.error());
    if (resume_offered_ && pool_) pool_->tls_resume.reset();
    err = EPROTO;
  } else if (err == EPROTO) {
    EGW_LOG_RATELIMITED(warn, 1000, "endpoint {}: TLS: {}", endpoint_->label(), sock_.error());
  }
  if (!user_) {
    if (pool_) pool_->remove(this);
    close();
    return;
  }
  if (phase_ == Phase::kConnecting) {
    user_->on_upstream_connected(*this, err);
    return;
  }
  if (phase_ == Phase::kTunnel) {
    user_->on_upstream_error(*this, HttpError::kTruncated, err);
    return;
  }
  fail(response_started_ || phase_ == Phase::kBody ? HttpError::kTruncated : HttpError::kReset,
       err);
}

void HttpConnection::on_sent(net::ByteStream&) {
  if (user_ && !closing_ && !sock_.send_full()) user_->on_upstream_sent(*this);
}

void HttpConnection::fail(HttpError e, int err) {
  broken_ = true;
  if (user_) {
    user_->on_upstream_error(*this, e, err);
  } else {
    close();
  }
}

void HttpConnection::close(bool abortive) {
  if (closing_) return;
  closing_ = true;
  user_ = nullptr;
  in_.clear();
  trailers_.reset();
  release_head_storage();
  loop_.timers().cancel(idle_timer_);
  if (abortive) {
    sock_.abort();
  } else {
    sock_.close();
  }
}

void HttpConnection::on_released(net::ByteStream&) {
  home_.destroy(this);
}

}  // namespace egw::upstream
