#include "proto/h2/server.h"

#include "proto/h2/mem.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>

namespace egw::proto::h2 {

struct ServerSession::NvScratch {
  std::vector<nghttp2_nv> v;
};

const char* to_string(uint32_t code) {
  switch (code) {
    case kNoError:
      return "NO_ERROR";
    case kProtocolError:
      return "PROTOCOL_ERROR";
    case kInternalError:
      return "INTERNAL_ERROR";
    case kFlowControlError:
      return "FLOW_CONTROL_ERROR";
    case kSettingsTimeout:
      return "SETTINGS_TIMEOUT";
    case kStreamClosed:
      return "STREAM_CLOSED";
    case 0x6:
      return "FRAME_SIZE_ERROR";
    case kRefusedStream:
      return "REFUSED_STREAM";
    case kCancel:
      return "CANCEL";
    case kCompressionError:
      return "COMPRESSION_ERROR";
    case 0xa:
      return "CONNECT_ERROR";
    case kEnhanceYourCalm:
      return "ENHANCE_YOUR_CALM";
    case 0xc:
      return "INADEQUATE_SECURITY";
    case 0xd:
      return "HTTP_1_1_REQUIRED";
    default:
      return "unknown";
  }
}

namespace {

Stream* stream_of(nghttp2_session* s, int32_t id) {
  return static_cast<Stream*>(nghttp2_session_get_stream_user_data(s, id));
}

void drop_refs(Stream& s) {
  h2::drop_refs(s.refs);
}

}  // namespace

// What a session idle before its first request was made of (hibernated()).
struct ServerSession::Record {
  static constexpr size_t kBytes = 384;  // client bytes fed to nghttp2
  static constexpr size_t kOps = 32;
  static constexpr uint16_t kSend = 0;  // an op: a send(); else the length of a feed
  static constexpr uint64_t kFnvOffset = 14695981039346656037ull;
  static constexpr uint64_t kFnvPrime = 1099511628211ull;

  uint8_t bytes[kBytes];
  uint16_t ops[kOps];
  uint16_t nbytes = 0;
  uint8_t nops = 0;
  uint64_t out_len = 0;  // what our sends produced, and its FNV-1a hash
  uint64_t out_hash = kFnvOffset;

  bool add_op(uint16_t op) {
    if (nops == kOps) return false;
    ops[nops++] = op;
    return true;
  }
  void hash(const uint8_t* data, size_t len) {
    for (size_t i = 0; i < len; ++i)
      out_hash = (out_hash ^ data[i]) * kFnvPrime;
    out_len += len;
  }
};

// Passes output on and hashes it into the record; with no sink, only hashes
// (a replay's output, compared with the record's and dropped).
class ServerSession::RecordingSink final : public Sink {
 public:
  RecordingSink(Sink* out, Record& r) : out_(out), r_(r) {}
  void write(const uint8_t* data, size_t len) override {
    r_.hash(data, len);
    if (out_) out_->write(data, len);
  }

 private:
  Sink* out_;
  Record& r_;
};

struct ServerSession::Callbacks {
  static ServerSession& self(void* ud) { return *static_cast<ServerSession*>(ud); }

  static int on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* ud) {
    ServerSession& me = self(ud);
    bool costly = false;
    switch (hd->type) {
      case NGHTTP2_DATA:
        costly = hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM);
        break;
      case NGHTTP2_HEADERS:
      case NGHTTP2_CONTINUATION:
        break;
      case NGHTTP2_SETTINGS:
        costly = !(hd->flags & NGHTTP2_FLAG_ACK);
        break;
      case NGHTTP2_PING:
        costly = !(hd->flags & NGHTTP2_FLAG_ACK);
        break;
      case NGHTTP2_GOAWAY:
        break;
      case NGHTTP2_WINDOW_UPDATE:
        // A peer credits back what we sent: up to two per DATA frame (its
        // stream's and the connection's window) are free.
        if (me.window_update_allowance_ > 0) {
          --me.window_update_allowance_;
        } else {
          costly = true;
        }
        break;
      default:  // PRIORITY, RST_STREAM, PUSH_PROMISE, unknown types
        costly = true;
        break;
    }
    if (costly && !me.glitch(1, "too many control or empty frames")) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
  }

  static int on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void* ud) {
    ServerSession& me = self(ud);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    const int32_t id = frame->hd.stream_id;
    if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      me.in_headers_ = true;
      me.headers_started_ms_ = me.now_ms_;
      ++me.streams_opened_;
      me.stop_recording();  // a stream: HPACK state from here on
      Stream* s = me.goaway_ ? nullptr : me.handler_.begin_stream(id);
      if (!s) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
        return 0;
      }
      ++me.open_;
      s->id = id;
      s->opened_ms = me.now_ms_;
      nghttp2_session_set_stream_user_data(session, id, s);
      return 0;
    }
    if (Stream* s = stream_of(session, id)) {
      me.in_headers_ = true;
      me.headers_started_ms_ = me.now_ms_;
      s->in_trailers = true;
    }
    return 0;
  }

  static int on_header(nghttp2_session* session, const nghttp2_frame* frame, nghttp2_rcbuf* name,
                       nghttp2_rcbuf* value, uint8_t, void* ud) {
    ServerSession& me = self(ud);
    Stream* s = stream_of(session, frame->hd.stream_id);
    if (!s || s->reject) return 0;
    const std::string_view n = view(name), v = view(value);
    s->header_bytes += static_cast<uint32_t>(n.size() + v.size() + 32);
    const size_t count = s->in_trailers ? s->trailers.size() : s->fields.size();
    if (s->header_bytes > me.settings_.max_header_list || count >= me.settings_.max_headers) {
      // Keep decoding (HPACK state is the connection's), keep nothing more.
      if (!s->in_trailers) s->reject = 431;
      return 0;
    }
    nghttp2_rcbuf_incref(name);
    nghttp2_rcbuf_incref(value);
    s->refs.push_back(name);
    s->refs.push_back(value);
    if (s->in_trailers) {
      s->trailers.push_back({n, v});
      return 0;
    }
    if (!n.empty() && n[0] == ':') {
      // nghttp2 has checked the pseudo-fields: known, once each, first.
      if (n == ":method") {
        s->method = v;
      } else if (n == ":scheme") {
        s->scheme = v;
      } else if (n == ":authority") {
        s->authority = v;
      } else if (n == ":path") {
        s->path = v;
      } else if (n == ":protocol") {
        s->protocol = v;
      }
      return 0;
    }
    s->fields.push_back({n, v});
    return 0;
  }

  static int on_invalid_header(nghttp2_session*, const nghttp2_frame*, nghttp2_rcbuf*,
                               nghttp2_rcbuf*, uint8_t, void* ud) {
    // The stream is reset with PROTOCOL_ERROR (counted when it is sent).
    (void)ud;
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }

  static int on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* ud) {
    ServerSession& me = self(ud);
    const int32_t id = frame->hd.stream_id;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS: {
        me.in_headers_ = false;
        Stream* s = stream_of(session, id);
        if (!s) return 0;
        const bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
          s->headers_done = true;
          s->request_ended = end;
          me.finish_head(*s);
          return 0;
        }
        // Trailers (nghttp2 refuses a second HEADERS without END_STREAM).
        s->request_ended = true;
        if (s->headers_done && !s->reject) me.handler_.on_request_end(*s, s->trailers);
        return 0;
      }
      case NGHTTP2_DATA: {
        if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
        Stream* s = stream_of(session, id);
        if (!s) return 0;
        s->request_ended = true;
        if (s->headers_done && !s->reject) me.handler_.on_request_end(*s, {});
        return 0;
      }
      case NGHTTP2_SETTINGS:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) me.settings_acked_ = true;
        return 0;
      case NGHTTP2_RST_STREAM: {
        Stream* s = stream_of(session, id);
        if (!s) return 0;
        s->reset_by_peer = true;
        if (me.now_ms_ - s->opened_ms < kPrematureWindowMs) ++me.premature_resets_;
        if (me.streams_opened_ >= kPrematureMinStreams &&
            me.premature_resets_ * 2 > me.streams_opened_) {
          me.fail(kEnhanceYourCalm, "most streams reset right after opening (rapid reset)");
          return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        return 0;
      }
      default:
        return 0;
    }
  }

  static int on_invalid_frame(nghttp2_session*, const nghttp2_frame*, int, void* ud) {
    return self(ud).glitch(1, "too many invalid frames") ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
  }

  static int on_data_chunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data,
                           size_t len, void* ud) {
    ServerSession& me = self(ud);
    Stream* s = stream_of(session, id);
    if (!s || s->reject || !s->headers_done) {
      nghttp2_session_consume(session, id, len);  // dropped: credit it at once
      return 0;
    }
    me.handler_.on_request_data(*s, data, len);
    return 0;
  }

  static int on_frame_send(nghttp2_session* session, const nghttp2_frame* frame, void* ud) {
    ServerSession& me = self(ud);
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
      me.mark_reset(frame->hd.stream_id);
      // Streams refused or found malformed cost like the client's resets.
      const uint32_t code = frame->rst_stream.error_code;
      if (code != NGHTTP2_NO_ERROR && code != NGHTTP2_CANCEL) {
        if (Stream* s = stream_of(session, frame->hd.stream_id);
            s && me.now_ms_ - s->opened_ms < kPrematureWindowMs) {
          ++me.premature_resets_;
        }
        if (!me.glitch(1, "too many malformed or refused streams")) {
          return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
      }
    } else if (frame->hd.type == NGHTTP2_DATA) {
      // Progress: a frame of body earns back a glitch, and the two
      // WINDOW_UPDATEs that may answer it.
      me.glitch_tokens_ = std::min<double>(me.glitch_tokens_ + 1, me.settings_.glitch_burst);
      me.window_update_allowance_ =
          std::min<uint32_t>(me.window_update_allowance_ + 2, kMaxWindowUpdateAllowance);
    } else if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.last_stream_id != (1u << 31) - 1) {
      me.goaway_ = true;  // the final one (not the shutdown notice)
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session* session, int32_t id, uint32_t error_code, void* ud) {
    // Never a fatal code from here (nghttp2 1.52 leaks on it).
    ServerSession& me = self(ud);
    Stream* s = stream_of(session, id);
    if (!s || me.deleting_) return 0;
    nghttp2_session_set_stream_user_data(session, id, nullptr);
    --me.open_;
    drop_refs(*s);
    me.handler_.on_stream_closed(*s, error_code);
    return 0;
  }

  static ssize_t read_body(nghttp2_session* session, int32_t id, uint8_t*, size_t length,
                           uint32_t* flags, nghttp2_data_source* source, void* ud) {
    ServerSession& me = self(ud);
    Stream* s = static_cast<Stream*>(source->ptr);
    bool eof = false, trailers = false;
    const size_t n = me.handler_.body_ready(*s, length, &eof, &trailers);
    const std::span<const ph::Field> t =
        eof && trailers ? me.handler_.response_trailers(*s) : std::span<const ph::Field>();
    return body_read_result(session, id, n, eof, t, me.nv_->v, flags);
  }

  static int send_data(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                       size_t length, nghttp2_data_source* source, void* ud) {
    ServerSession& me = self(ud);
    Stream* s = static_cast<Stream*>(source->ptr);
    (void)frame;  // never padded: no padding callback is set
    if (!me.handler_.write_data(*s, framehd, length)) return NGHTTP2_ERR_WOULDBLOCK;
    me.handler_.on_data_sent(*s, length);
    return 0;
  }

  static int on_error(nghttp2_session*, int, const char* msg, size_t len, void* ud) {
    ServerSession& me = self(ud);
    if (me.error_.empty()) me.error_.assign(msg, len);
    return 0;
  }
};

ServerSession::ServerSession(Handler& handler, const Settings& settings)
    : handler_(handler),
      settings_(settings),
      nv_(std::make_unique<NvScratch>()),
      glitch_tokens_(settings.glitch_burst) {}

ServerSession::~ServerSession() {
  // The Handler has released every stream (release()) before this: the
  // field buffers are the session's memory. No callback runs from here on.
  deleting_ = true;
  if (session_) nghttp2_session_del(session_);
}

void ServerSession::release(Stream& s) {
  drop_refs(s);
  s.fields.clear();
  s.trailers.clear();
}

void Stream::reset() {
  // What the vectors hold is gone (release() ran); their room stays.
  void* const u = user;
  std::vector<ph::Field> f = std::move(fields), t = std::move(trailers);
  std::vector<nghttp2_rcbuf*> r = std::move(refs);
  std::string c = std::move(cookie);
  *this = Stream{};
  user = u;
  f.clear();
  t.clear();
  r.clear();
  c.clear();
  fields = std::move(f);
  trailers = std::move(t);
  refs = std::move(r);
  cookie = std::move(c);
}

void ServerSession::detach(Stream& s) {
  if (session_ && s.id) nghttp2_session_set_stream_user_data(session_, s.id, nullptr);
  release(s);
}

bool ServerSession::start(uint64_t now_ms) {
  now_ms_ = refill_ms_ = settings_sent_ms_ = now_ms;
  record_ = std::make_unique<Record>();
  return create_session();
}

bool ServerSession::create_session() {
  nghttp2_session_callbacks* cb = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) return false;
  nghttp2_session_callbacks_set_on_begin_frame_callback(cb, Callbacks::on_begin_frame);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, Callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback2(cb, Callbacks::on_header);
  nghttp2_session_callbacks_set_on_invalid_header_callback2(cb, Callbacks::on_invalid_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, Callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, Callbacks::on_invalid_frame);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, Callbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, Callbacks::on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, Callbacks::on_stream_close);
  nghttp2_session_callbacks_set_send_data_callback(cb, Callbacks::send_data);
  nghttp2_session_callbacks_set_error_callback2(cb, Callbacks::on_error);
  nghttp2_option* opt = new_options(settings_.max_continuations);
  if (!opt) {
    nghttp2_session_callbacks_del(cb);
    return false;
  }
#ifdef EGW_NGHTTP2_RESET_RATE_LIMIT
  nghttp2_option_set_stream_reset_rate_limit(opt, settings_.reset_burst, settings_.reset_rate);
#endif
  const int rv = nghttp2_session_server_new3(&session_, cb, this, opt, allocator());
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) {
    session_ = nullptr;
    return false;
  }
  const nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings_.initial_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, settings_.max_header_list},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
      {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, settings_.enable_connect_protocol ? 1u : 0u},
  };
  return submit_settings(session_, iv, settings_.connection_window);
}

// Client stream ids below the highest one seen: nghttp2 keeps no closed
// streams (no RFC 7540 priorities), so it would ignore any frame on them.
// RFC 9113 §5.1 wants a frame on a stream the client closed (END_STREAM or
// RST_STREAM) to be a connection error STREAM_CLOSED, and HEADERS on a lower
// id than one already used a PROTOCOL_ERROR; frames on a stream the server
// reset are ignored (they may have been in flight). Ids further back than
// the window are ignored as well.
uint32_t ServerSession::track_stream(bool headers, int32_t id) {
  const auto uid = static_cast<uint32_t>(id);
  auto slot = [this](uint32_t i) -> uint8_t& { return ids_[(i >> 1) % kIdWindow]; };
  if (uid > max_id_) {
    if (!headers) return kNoError;  // DATA on an idle stream: nghttp2's to refuse
    // Ids skipped on the way are closed without ever being opened.
    for (uint32_t i = max_id_ == 0 ? 1 : max_id_ + 2, n = 0; i < uid && n < kIdWindow; i += 2, ++n)
      slot(i) = kIdUnused;
    max_id_ = uid;
    slot(uid) = kIdOpened;
    return kNoError;
  }
  if (nghttp2_session_find_stream(session_, id) != nullptr) return kNoError;  // nghttp2's
  if (max_id_ - uid >= 2 * kIdWindow) return kNoError;  // too far back to know
  switch (slot(uid)) {
    case kIdOpened:
      return kStreamClosed;
    case kIdUnused:
      return headers ? kProtocolError : kStreamClosed;
    default:  // reset by us
      return kNoError;
  }
}

void ServerSession::mark_reset(int32_t id) {
  const auto uid = static_cast<uint32_t>(id);
  if ((uid & 1) && uid <= max_id_ && max_id_ - uid < 2 * kIdWindow) {
    ids_[(uid >> 1) % kIdWindow] = kIdReset;
  }
}

void ServerSession::refill(uint64_t now_ms) {
  now_ms_ = now_ms;
  if (now_ms <= refill_ms_) return;
  glitch_tokens_ = std::min<double>(
      glitch_tokens_ + static_cast<double>(now_ms - refill_ms_) * settings_.glitch_rate / 1000.0,
      settings_.glitch_burst);
  refill_ms_ = now_ms;
}

bool ServerSession::glitch(uint32_t cost, const char* why) {
  if (replaying_) return true;  // counted the first time
  glitch_total_ += cost;
  glitch_tokens_ -= cost;
  if (glitch_tokens_ >= 0) return true;
  fail(kEnhanceYourCalm, why);
  return false;
}

void ServerSession::fail(uint32_t error_code, const char* why) {
  if (failed_) return;
  if (hibernated_ && !wake()) return;  // failed already
  stop_recording();
  failed_ = true;
  if (error_.empty()) error_ = why;
  nghttp2_session_terminate_session(session_, error_code);
}

void ServerSession::stop_recording() {
  record_.reset();
}

void ServerSession::record_input(const uint8_t* data, size_t len) {
  Record& r = *record_;
  if (len > Record::kBytes - r.nbytes || !r.add_op(static_cast<uint16_t>(len))) {
    stop_recording();  // more than an idle client sends: the session stays
    return;
  }
  std::memcpy(r.bytes + r.nbytes, data, len);
  r.nbytes = static_cast<uint16_t>(r.nbytes + len);
}

void ServerSession::hibernate() {
  deleting_ = true;
  nghttp2_session_del(session_);
  deleting_ = false;
  session_ = nullptr;
  hibernated_ = true;
  ++hibernations_;
}

bool ServerSession::wake() {
  if (!record_) {  // our GOAWAY went without a session: there is no coming back
    failed_ = true;
    return false;
  }
  hibernated_ = false;
  std::unique_ptr<Record> r = std::move(record_);
  if (!create_session()) {
    session_ = nullptr;
    failed_ = true;
    if (error_.empty()) error_ = "out of memory for the HTTP/2 session";
    return false;
  }
  // The same calls in the same order give the same session and the same
  // output; the output already went out.
  Record again;
  RecordingSink check(nullptr, again);
  bool same = true;
  const uint8_t* in = r->bytes;
  replaying_ = true;
  for (uint8_t i = 0; i < r->nops && same; ++i) {
    if (const uint16_t op = r->ops[i]; op == Record::kSend) {
      same = send_frames(session_, check, SIZE_MAX) >= 0;
    } else {
      same = nghttp2_session_mem_recv(session_, in, op) == static_cast<ssize_t>(op);
      in += op;
    }
  }
  replaying_ = false;
  if (!same || again.out_len != r->out_len || again.out_hash != r->out_hash) {
    fail(kInternalError, "the idle HTTP/2 session did not come back as it was");
    return false;
  }
  record_ = std::move(r);  // and go on recording while it stays idle
  return true;
}

// Client bytes go to nghttp2 one frame at a time, each frame header looked
// at first, with the session as the frames before it left it: what nghttp2
// (without RFC 7540 priorities, and keeping no closed streams) would pass
// over silently is checked here (track_stream(), PRIORITY).
ServerSession::Status ServerSession::recv(const uint8_t* data, size_t len, uint64_t now_ms) {
  if (failed_) return Status::kClosed;
  if (hibernated_ && goaway_) return Status::kOk;  // after our GOAWAY(0): nothing is taken
  if (hibernated_ && !wake()) return Status::kClosed;
  refill(now_ms);
  size_t fed = 0, i = 0;
  while (i < len) {
    if (scan_pri_ > 0) {
      // The dependency of a PRIORITY frame (its first 4 payload bytes).
      while (scan_pri_ > 0 && i < len) {
        pri_dep_ = (pri_dep_ << 8) | data[i++];
        --scan_pri_;
      }
      if (scan_pri_ == 0) {
        if ((pri_dep_ & 0x7fffffffu) == pri_stream_ && pri_stream_ > max_id_) {
          // RFC 9113 §5.3.1: a stream cannot depend on itself. An idle one
          // cannot be reset (§5.1): the connection ends instead.
          fail(kProtocolError, "PRIORITY: an idle stream that depends on itself");
          return Status::kClosed;
        }
        if ((pri_dep_ & 0x7fffffffu) == pri_stream_) {
          nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, static_cast<int32_t>(pri_stream_),
                                    NGHTTP2_PROTOCOL_ERROR);
        }
      }
      continue;
    }
    if (scan_skip_ > 0) {
      const size_t k = std::min<size_t>(scan_skip_, len - i);
      scan_skip_ -= static_cast<uint32_t>(k);
      i += k;
      continue;
    }
    if (hdr_len_ == 0) {
      // A frame starts here: nghttp2 gets everything before it first.
      if (!feed(data + fed, i - fed)) return Status::kClosed;
      fed = i;
    }
    hdr_[hdr_len_++] = data[i++];
    if (hdr_len_ < 9) continue;
    hdr_len_ = 0;
    const uint32_t length = (uint32_t{hdr_[0]} << 16) | (uint32_t{hdr_[1]} << 8) | hdr_[2];
    const uint8_t type = hdr_[3];
    const uint32_t id = ((uint32_t{hdr_[5]} << 24) | (uint32_t{hdr_[6]} << 16) |
                         (uint32_t{hdr_[7]} << 8) | hdr_[8]) &
                        0x7fffffffu;
    scan_skip_ = length;
    if ((type == NGHTTP2_DATA || type == NGHTTP2_HEADERS) && (id & 1) && !goaway_) {
      if (const uint32_t code = track_stream(type == NGHTTP2_HEADERS, static_cast<int32_t>(id));
          code != kNoError) {
        fail(code, code == kStreamClosed ? "a frame on a closed stream"
                                         : "a stream id lower than one already used");
        return Status::kClosed;
      }
    } else if (type == NGHTTP2_PRIORITY) {
      if (id == 0) {
        fail(kProtocolError, "PRIORITY on stream 0");
        return Status::kClosed;
      }
      if (length == 5) {
        scan_pri_ = 4;
        scan_skip_ = 1;  // the weight, after the dependency
        pri_dep_ = 0;
        pri_stream_ = id;
      }
    }
  }
  if (!feed(data + fed, len - fed)) return Status::kClosed;
  if (nghttp2_session_get_outbound_queue_size(session_) > settings_.max_outbound_queue) {
    fail(kEnhanceYourCalm, "outbound queue over its cap");
    return Status::kClosed;
  }
  if (failed_) return Status::kClosed;
  // Bytes that called for no answer (the ACK of our SETTINGS) may leave the
  // session idle with nothing to send.
  if (can_hibernate()) hibernate();
  return Status::kOk;
}

bool ServerSession::feed(const uint8_t* data, size_t len) {
  if (len == 0) return !failed_;
  if (failed_) return false;
  if (record_) record_input(data, len);
  const ssize_t rv = nghttp2_session_mem_recv(session_, data, len);
  if (rv >= 0) return !failed_;
  if (!failed_) {
    // The library's own verdict (bad preface, flood, protocol error): it
    // has queued a GOAWAY where one applies; where it has not, one is.
    failed_ = true;
    if (error_.empty()) error_ = nghttp2_strerror(static_cast<int>(rv));
    terminate_after_recv_error(session_, rv);
  }
  return false;
}

void ServerSession::send(Sink& out, size_t budget) {
  if (!session_) {
    // Hibernated (or never started): only a GOAWAY of goaway() to send.
    if (raw_goaway_) {
      raw_goaway_ = false;
      uint8_t f[17] = {0, 0, 8, NGHTTP2_GOAWAY, 0, 0, 0, 0, 0, 0, 0, 0, 0};
      for (int i = 0; i < 4; ++i)
        f[13 + i] = static_cast<uint8_t>(raw_goaway_code_ >> (24 - 8 * i));
      out.write(f, sizeof(f));
    }
    return;
  }
  ssize_t rv;
  if (record_) {
    RecordingSink rec(&out, *record_);
    rv = send_frames(session_, rec, budget);
    if (record_ && !record_->add_op(Record::kSend)) stop_recording();
  } else {
    rv = send_frames(session_, out, budget);
  }
  if (rv < 0) {
    failed_ = true;
    if (error_.empty()) error_ = nghttp2_strerror(static_cast<int>(rv));
    return;
  }
  if (can_hibernate()) hibernate();
}

bool ServerSession::can_hibernate() const {
  // Not once the session winds down (the client's GOAWAY): that ends it.
  return record_ && session_ && streams_opened_ == 0 && open_ == 0 && !failed_ && !goaway_ &&
         !nghttp2_session_want_write(session_) && nghttp2_session_want_read(session_);
}

bool ServerSession::want_write() const {
  if (!session_) return raw_goaway_;
  return nghttp2_session_want_write(session_);
}

bool ServerSession::want_read() const {
  if (hibernated_) return !failed_ && !goaway_;
  return session_ && !failed_ && nghttp2_session_want_read(session_);
}

void ServerSession::finish_head(Stream& s) {
  if (s.reject) {
    handler_.on_request_rejected(s, s.reject);
    return;
  }
  ph::RequestHead head;
  head.method_text = s.method;
  head.method = ph::parse_method(s.method);
  head.scheme = s.scheme;
  head.path = s.path;
  head.version = 20;
  std::string_view host;
  size_t cookies = 0;
  uint64_t length = 0;
  bool has_length = false;
  for (const auto& f : s.fields) {
    // nghttp2 has checked that names are lower case.
    if (f.name == "host") {
      if (!host.empty()) {
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_PROTOCOL_ERROR);
        return;
      }
      host = f.value;
    } else if (f.name == "cookie") {
      ++cookies;
    } else if (f.name == "content-length") {
      // nghttp2 has checked it is one number.
      const auto r = std::from_chars(f.value.data(), f.value.data() + f.value.size(), length);
      has_length = r.ec == std::errc();
    } else if (f.name == "expect") {
      head.expect_continue = ph::iequals(f.value, "100-continue");
    }
  }
  // RFC 9113 §8.3.1: Host, when present, names what :authority does.
  if (!s.authority.empty() && !host.empty() && !ph::iequals(s.authority, host)) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_PROTOCOL_ERROR);
    return;
  }
  head.authority = s.authority.empty() ? host : s.authority;
  if (cookies > 1) {
    // RFC 9113 §8.2.3: one field again before it goes to HTTP/1.1.
    size_t w = 0;
    for (const auto& f : s.fields) {
      if (f.name == "cookie") {
        if (!s.cookie.empty()) s.cookie += "; ";
        s.cookie += f.value;
      } else {
        s.fields[w++] = f;
      }
    }
    s.fields.resize(w);
    s.fields.push_back({"cookie", s.cookie});
  }
  head.fields = s.fields;
  if (s.request_ended) {
    head.body = ph::Body::kNone;
  } else if (has_length) {
    head.body = ph::Body::kLength;
    head.content_length = length;
  } else {
    head.body = ph::Body::kUnknown;
  }
  if (has_length && s.request_ended) {
    head.body = ph::Body::kLength;  // a declared empty body
    head.content_length = length;
  }
  if (head.method == ph::Method::kConnect) {
    head.body = ph::Body::kNone;  // what follows are tunnel bytes, not a body
  }
  if (!s.protocol.empty()) {
    // RFC 8441 extended CONNECT (nghttp2 has checked :scheme, :path and that
    // we enabled it): the HTTP/2 form of an HTTP/1.1 upgrade, and so handed
    // on as one: GET with the protocol to upgrade to.
    head.method = ph::Method::kGet;
    head.method_text = "GET";
    head.upgrade = s.protocol;
    head.body = ph::Body::kNone;
  }
  handler_.on_request(s, head, s.request_ended);
}

namespace {

// The head as nghttp2 takes it, in `nv` (reused: no allocation once it has
// grown to the largest head).
void make_nv(std::vector<nghttp2_nv>& nv, uint16_t status, char* status_buf,
             std::span<const ServerSession::Nv> fields) {
  nv.clear();
  const auto r = std::to_chars(status_buf, status_buf + 3, status);
  nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(":status")),
                reinterpret_cast<uint8_t*>(status_buf), 7, static_cast<size_t>(r.ptr - status_buf),
                NGHTTP2_NV_FLAG_NONE});
  for (const auto& f : fields) {
    nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(f.name.data())),
                  reinterpret_cast<uint8_t*>(const_cast<char*>(f.value.data())), f.name.size(),
                  f.value.size(), NGHTTP2_NV_FLAG_NONE});
  }
}

}  // namespace

bool ServerSession::submit_response(int32_t id, uint16_t status, std::span<const Nv> fields,
                                    bool end) {
  if (!session_) return false;
  stop_recording();
  Stream* s = stream_of(session_, id);
  if (!s || status < 200 || status > 999) return false;
  char buf[4];
  make_nv(nv_->v, status, buf, fields);
  nghttp2_data_provider prd;
  prd.source.ptr = s;
  prd.read_callback = Callbacks::read_body;
  return nghttp2_submit_response(session_, id, nv_->v.data(), nv_->v.size(),
                                 end ? nullptr : &prd) == 0;
}

bool ServerSession::submit_informational(int32_t id, uint16_t status, std::span<const Nv> fields) {
  if (!session_) return false;
  stop_recording();
  if (!stream_of(session_, id) || status < 100 || status > 199) return false;
  char buf[4];
  make_nv(nv_->v, status, buf, fields);
  return nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, id, nullptr, nv_->v.data(),
                                nv_->v.size(), nullptr) >= 0;
}

void ServerSession::resume(int32_t id) {
  if (!session_) return;
  nghttp2_session_resume_data(session_, id);
}

void ServerSession::reset_stream(int32_t id, uint32_t error_code) {
  if (!session_) return;
  stop_recording();
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, error_code);
}

void ServerSession::consume(int32_t id, size_t n) {
  if (!n || !session_) return;
  stop_recording();
  nghttp2_session_consume(session_, id, n);
}

void ServerSession::consume_connection(size_t n) {
  if (!n || !session_) return;
  stop_recording();
  nghttp2_session_consume_connection(session_, n);
}

void ServerSession::shutdown_notice() {
  // A hibernated session has no stream for the notice to protect: the
  // final GOAWAY (goaway()) is all it needs.
  if (goaway_ || hibernated_ || !session_) return;
  stop_recording();
  nghttp2_submit_shutdown_notice(session_);
}

void ServerSession::goaway(uint32_t error_code) {
  if (hibernated_) {
    // No stream was ever opened: the final GOAWAY names stream 0, and
    // needs no session (a drain of many idle connections builds none).
    stop_recording();
    goaway_ = true;
    raw_goaway_ = true;
    raw_goaway_code_ = error_code;
    return;
  }
  if (!session_) return;
  stop_recording();
  goaway_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), error_code, nullptr, 0);
}

int32_t ServerSession::stream_window(int32_t id) const {
  if (!session_) return 0;
  return std::min(nghttp2_session_get_stream_remote_window_size(session_, id),
                  nghttp2_session_get_remote_window_size(session_));
}

uint32_t ServerSession::last_stream_id() const {
  if (!session_) return 0;  // hibernated: no stream yet
  return static_cast<uint32_t>(nghttp2_session_get_last_proc_stream_id(session_));
}

}  // namespace egw::proto::h2
