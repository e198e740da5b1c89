#include "proto/h2/client.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <charconv>

#include "proto/h2/mem.h"

namespace egw::proto::h2 {

struct ClientSession::NvScratch {
  std::vector<nghttp2_nv> v;
};

namespace {

ClientStream* stream_of(nghttp2_session* s, int32_t id) {
  return static_cast<ClientStream*>(nghttp2_session_get_stream_user_data(s, id));
}

void drop_refs(ClientStream& s) {
  h2::drop_refs(s.refs);
}

}  // namespace

struct ClientSession::Callbacks {
  static ClientSession& self(void* ud) { return *static_cast<ClientSession*>(ud); }

  static int on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void*) {
    if (frame->hd.type == NGHTTP2_PUSH_PROMISE) {
      // Only before the server saw our SETTINGS (ENABLE_PUSH = 0): refused.
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->push_promise.promised_stream_id,
                                NGHTTP2_REFUSED_STREAM);
      return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    ClientStream* s = stream_of(session, frame->hd.stream_id);
    if (!s) return 0;
    if (s->final_head) {
      s->in_trailers = true;
    } else {
      // A new head (the first, or the one after a 1xx): what a 1xx head
      // left is gone.
      drop_refs(*s);
      s->fields.clear();
      s->status = 0;
      s->header_bytes = 0;
    }
    return 0;
  }

  static int on_header(nghttp2_session* session, const nghttp2_frame* frame, nghttp2_rcbuf* name,
                       nghttp2_rcbuf* value, uint8_t, void* ud) {
    ClientSession& me = self(ud);
    ClientStream* s = stream_of(session, frame->hd.stream_id);
    if (!s || s->too_large) return 0;
    const std::string_view n = view(name), v = view(value);
    s->header_bytes += static_cast<uint32_t>(n.size() + v.size() + 32);
    const size_t count = s->in_trailers ? s->trailers.size() : s->fields.size();
    if (s->header_bytes > me.settings_.max_header_list || count >= me.settings_.max_headers) {
      s->too_large = true;
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
      return 0;
    }
    if (n == ":status") {
      // nghttp2 has checked it: three digits, once, first.
      uint16_t st = 0;
      std::from_chars(v.data(), v.data() + v.size(), st);
      s->status = st;
      return 0;
    }
    nghttp2_rcbuf_incref(name);
    nghttp2_rcbuf_incref(value);
    s->refs.push_back(name);
    s->refs.push_back(value);
    (s->in_trailers ? s->trailers : s->fields).push_back({n, v});
    return 0;
  }

  static int on_invalid_header(nghttp2_session*, const nghttp2_frame*, nghttp2_rcbuf*,
                               nghttp2_rcbuf*, uint8_t, void*) {
    // The stream is reset with PROTOCOL_ERROR: a malformed response.
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }

  static int on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* ud) {
    ClientSession& me = self(ud);
    const int32_t id = frame->hd.stream_id;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS: {
        ClientStream* s = stream_of(session, id);
        if (!s || s->too_large) return 0;
        const bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
        if (s->in_trailers) {
          s->ended = true;
          me.handler_.on_response_end(*s, s->trailers);
          return 0;
        }
        if (s->status < 100) {
          // A head without :status (nghttp2 lets it through as trailers
          // after a 1xx): malformed.
          s->too_large = true;  // nothing more of it is reported
          s->malformed = true;
          nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_PROTOCOL_ERROR);
          return 0;
        }
        ph::ResponseHead head;
        head.status = s->status;
        head.fields = s->fields;
        head.version = 20;
        for (const auto& f : s->fields) {
          if (ph::iequals(f.name, "content-length")) {
            // nghttp2 has checked it is one decimal number.
            uint64_t n = 0;
            std::from_chars(f.value.data(), f.value.data() + f.value.size(), n);
            head.has_length = true;
            head.content_length = n;
          }
        }
        const bool informational = head.status < 200;
        if (!informational) s->final_head = true;
        if (end) {
          head.body = ph::Body::kNone;
        } else {
          head.body = head.has_length ? ph::Body::kLength : ph::Body::kUnknown;
        }
        if (end) s->ended = true;
        me.handler_.on_response_head(*s, head, end && !informational);
        if (informational) {
          drop_refs(*s);
          s->fields.clear();
        }
        return 0;
      }
      case NGHTTP2_DATA: {
        if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
        ClientStream* s = stream_of(session, id);
        if (!s || s->too_large || !s->final_head) return 0;
        s->ended = true;
        me.handler_.on_response_end(*s, {});
        return 0;
      }
      case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
          me.settings_received_ = true;
          me.handler_.on_settings();
        }
        return 0;
      case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) me.handler_.on_ping_ack();
        return 0;
      case NGHTTP2_GOAWAY:
        me.goaway_received_ = true;
        me.handler_.on_goaway(frame->goaway.last_stream_id, frame->goaway.error_code);
        return 0;
      default:
        return 0;
    }
  }

  static int on_data_chunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data,
                           size_t len, void* ud) {
    ClientSession& me = self(ud);
    ClientStream* s = stream_of(session, id);
    if (!s || s->too_large || !s->final_head) {
      nghttp2_session_consume(session, id, len);  // dropped: credit it at once
      return 0;
    }
    me.handler_.on_response_data(*s, data, len);
    return 0;
  }

  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    // A GOAWAY with an error is the library ending the connection (the
    // server broke the protocol): recv() says so from now on.
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
      self(ud).fail("the connection failed (GOAWAY sent)");
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session* session, int32_t id, uint32_t error_code, void* ud) {
    ClientSession& me = self(ud);
    ClientStream* s = stream_of(session, id);
    if (!s || me.deleting_) return 0;
    nghttp2_session_set_stream_user_data(session, id, nullptr);
    --me.open_;
    drop_refs(*s);
    // A stream we reset ourselves for its head is a bad response.
    const uint32_t code = s->malformed   ? kProtocolError
                          : s->too_large ? kInternalError
                                         : error_code;
    me.handler_.on_stream_closed(*s, code);
    return 0;
  }

  static ssize_t read_body(nghttp2_session* session, int32_t id, uint8_t*, size_t length,
                           uint32_t* flags, nghttp2_data_source* source, void* ud) {
    ClientSession& me = self(ud);
    ClientStream* s = static_cast<ClientStream*>(source->ptr);
    bool eof = false, trailers = false;
    const size_t n = me.handler_.body_ready(*s, length, &eof, &trailers);
    const std::span<const ph::Field> t =
        eof && trailers ? me.handler_.request_trailers(*s) : std::span<const ph::Field>();
    return body_read_result(session, id, n, eof, t, me.nv_->v, flags);
  }

  static int send_data(nghttp2_session*, nghttp2_frame*, const uint8_t* framehd, size_t length,
                       nghttp2_data_source* source, void* ud) {
    self(ud).handler_.write_data(*static_cast<ClientStream*>(source->ptr), framehd, length);
    return 0;
  }

  static int on_error(nghttp2_session*, int, const char* msg, size_t len, void* ud) {
    ClientSession& me = self(ud);
    if (me.error_.empty()) me.error_.assign(msg, len);
    return 0;
  }
};

void ClientStream::reset() {
  void* const u = user;
  std::vector<ph::Field> f = std::move(fields), t = std::move(trailers);
  std::vector<nghttp2_rcbuf*> r = std::move(refs);
  *this = ClientStream{};
  user = u;
  f.clear();
  t.clear();
  r.clear();
  fields = std::move(f);
  trailers = std::move(t);
  refs = std::move(r);
}

ClientSession::ClientSession(ClientHandler& handler, const ClientSettings& settings)
    : handler_(handler), settings_(settings), nv_(std::make_unique<NvScratch>()) {}

ClientSession::~ClientSession() {
  deleting_ = true;
  if (session_) nghttp2_session_del(session_);
}

void ClientSession::release(ClientStream& s) {
  drop_refs(s);
  s.fields.clear();
  s.trailers.clear();
}

void ClientSession::detach(ClientStream& s) {
  if (session_ && s.id > 0 && stream_of(session_, s.id) == &s) {
    nghttp2_session_set_stream_user_data(session_, s.id, nullptr);
    --open_;
  }
  release(s);
}

bool ClientSession::start() {
  nghttp2_session_callbacks* cb = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) return false;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, Callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback2(cb, Callbacks::on_header);
  nghttp2_session_callbacks_set_on_invalid_header_callback2(cb, Callbacks::on_invalid_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, Callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, Callbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, Callbacks::on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, Callbacks::on_frame_send);
  nghttp2_session_callbacks_set_send_data_callback(cb, Callbacks::send_data);
  nghttp2_session_callbacks_set_error_callback2(cb, Callbacks::on_error);
  nghttp2_option* opt = new_options(settings_.max_continuations);
  if (!opt) {
    nghttp2_session_callbacks_del(cb);
    return false;
  }
  const int rv = nghttp2_session_client_new3(&session_, cb, this, opt, allocator());
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) {
    session_ = nullptr;
    return false;
  }
  const nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings_.initial_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, settings_.max_header_list},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  return submit_settings(session_, iv, settings_.connection_window);
}

void ClientSession::fail(const char* why) {
  if (error_.empty()) error_ = why;
  failed_ = true;
}

ClientSession::Status ClientSession::recv(const uint8_t* data, size_t len) {
  if (failed_) return Status::kClosed;
  if (len == 0) return Status::kOk;
  const ssize_t rv = nghttp2_session_mem_recv(session_, data, len);
  if (rv < 0) {
    failed_ = true;
    if (error_.empty()) error_ = nghttp2_strerror(static_cast<int>(rv));
    terminate_after_recv_error(session_, rv);
    return Status::kClosed;
  }
  // A connection error the library found queues GOAWAY (sent by send()):
  // it no longer wants to read.
  if (!failed_ && !nghttp2_session_want_read(session_) && open_ > 0) {
    fail("the connection failed");
  }
  return failed_ ? Status::kClosed : Status::kOk;
}

void ClientSession::send(Sink& out, size_t budget) {
  if (const ssize_t rv = send_frames(session_, out, budget); rv < 0) {
    fail(nghttp2_strerror(static_cast<int>(rv)));
  }
}

bool ClientSession::want_write() const {
  return session_ && nghttp2_session_want_write(session_);
}

bool ClientSession::want_read() const {
  return session_ && !failed_ && nghttp2_session_want_read(session_);
}

int32_t ClientSession::submit_request(ClientStream& s, std::span<const Nv> pseudo,
                                      std::span<const Nv> fields, bool end) {
  if (!accepts_streams()) return 0;
  std::vector<nghttp2_nv>& nv = nv_->v;
  nv.clear();
  for (const auto& f : pseudo)
    push_nv(nv, f.name, f.value);
  for (const auto& f : fields)
    push_nv(nv, f.name, f.value);
  nghttp2_data_provider prd;
  prd.source.ptr = &s;
  prd.read_callback = Callbacks::read_body;
  const int32_t id =
      nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), end ? nullptr : &prd, &s);
  if (id <= 0) return 0;
  s.id = id;
  ++open_;
  return id;
}

void ClientSession::resume(int32_t id) {
  nghttp2_session_resume_data(session_, id);
}

void ClientSession::reset_stream(int32_t id, uint32_t error_code) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, error_code);
}

void ClientSession::consume(int32_t id, size_t n) {
  if (n == 0) return;
  // The connection's share is credited even where the stream is gone.
  nghttp2_session_consume(session_, id, n);
}

void ClientSession::ping() {
  nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr);
}

void ClientSession::goaway(uint32_t error_code) {
  if (goaway_sent_) return;
  goaway_sent_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, 0, error_code, nullptr, 0);
}

uint32_t ClientSession::peer_max_streams() const {
  return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

int32_t ClientSession::stream_window(int32_t id) const {
  return std::min(nghttp2_session_get_stream_remote_window_size(session_, id),
                  nghttp2_session_get_remote_window_size(session_));
}

bool ClientSession::accepts_streams() const {
  return session_ && !failed_ && !goaway_received_ && !goaway_sent_ &&
         nghttp2_session_check_request_allowed(session_) != 0;
}

}  // namespace egw::proto::h2
