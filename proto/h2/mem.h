// What both HTTP/2 codecs (server.h, client.h) share: the allocator they
// give nghttp2 (per-thread free lists of small blocks, so that a worker that
// has served a few streams allocates nothing more for the next ones; see
// mem.cc) and a view of nghttp2's reference-counted buffers.
#pragma once

#include <nghttp2/nghttp2.h>

#include <span>
#include <string_view>
#include <vector>

#include "proto/http/message.h"

namespace egw::proto::h2 {

class Sink;

// Null under the sanitizers (nghttp2's malloc then, which ASan sees).
nghttp2_mem* allocator();

// The bytes of a reference-counted nghttp2 buffer.
std::string_view view(nghttp2_rcbuf* b);
// Lets go of the field buffers a stream kept.
void drop_refs(std::vector<nghttp2_rcbuf*>& refs);
// Appends one field to a name-value list (the views must outlive the submit).
void push_nv(std::vector<nghttp2_nv>& nv, std::string_view name, std::string_view value);

// Options both codecs share: WINDOW_UPDATE is the caller's (automatic
// updates off), a 4096-byte HPACK encoder table, and the CONTINUATION limit
// where the library has it. Null when out of memory; the caller deletes it.
nghttp2_option* new_options(uint32_t max_continuations);
// Queues our SETTINGS and grows the connection's receive window to
// `connection_window` (when above the default).
bool submit_settings(nghttp2_session* session, std::span<const nghttp2_settings_entry> iv,
                     uint32_t connection_window);

// After nghttp2_session_mem_recv failed with `rv`: the GOAWAY that verdict
// calls for (bad preface: PROTOCOL_ERROR; a callback refused or memory ran
// out: INTERNAL_ERROR; a flood or a CONTINUATION run: ENHANCE_YOUR_CALM).
// Other verdicts have queued their own GOAWAY.
void terminate_after_recv_error(nghttp2_session* session, ssize_t rv);
// Moves queued frames into `out` until nothing is left or about `budget`
// bytes went (one more frame may pass it). 0, or the library's error.
ssize_t send_frames(nghttp2_session* session, Sink& out, size_t budget);

// What a data provider's read callback returns for a body sent without a
// copy (NGHTTP2_DATA_FLAG_NO_COPY): `n` bytes ready; at `eof` the end of the
// stream, or the `trailers` submitted after it (a non-empty list), built in
// `scratch`. NGHTTP2_ERR_DEFERRED when nothing is ready yet.
ssize_t body_read_result(nghttp2_session* session, int32_t id, size_t n, bool eof,
                         std::span<const proto::http::Field> trailers,
                         std::vector<nghttp2_nv>& scratch, uint32_t* flags);

}  // namespace egw::proto::h2
