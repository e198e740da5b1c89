#include "proto/h2/mem.h"

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "proto/h2/server.h"

namespace egw::proto::h2 {

namespace {

// nghttp2 allocates for every stream and every frame it queues (the stream,
// its outbound items, the copied head). Blocks up to kMaxCached bytes come
// from per-thread free lists by 64-byte class instead of malloc: a worker
// that has served a few streams allocates nothing more for the next ones.
// Each list keeps at most kMaxPerClass blocks; larger blocks (the 16 KiB
// frame buffer, HPACK tables) go to malloc. Sanitizer builds use malloc for
// everything, so that ASan sees every nghttp2 access.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPooled = false;
#else
constexpr bool kPooled = true;
#endif
constexpr size_t kClassBytes = 64;
constexpr size_t kClasses = 8;  // up to 512 bytes
constexpr size_t kMaxPerClass = 1024;
constexpr size_t kHeader = 16;  // keeps malloc's alignment
constexpr uint8_t kUncached = 0xff;

struct FreeBlock {
  FreeBlock* next;
};
struct ThreadCache {
  FreeBlock* head[kClasses] = {};
  size_t count[kClasses] = {};
  ~ThreadCache() {
    for (size_t c = 0; c < kClasses; ++c) {
      while (FreeBlock* b = head[c]) {
        head[c] = b->next;
        std::free(reinterpret_cast<uint8_t*>(b) - kHeader);
      }
    }
  }
};
thread_local ThreadCache t_cache;

size_t block_size(uint8_t cls) {
  return (cls + 1) * kClassBytes;
}

void* pool_malloc(size_t size, void*) {
  const size_t cls = size == 0 ? 0 : (size - 1) / kClassBytes;
  if (cls < kClasses) {
    if (FreeBlock* b = t_cache.head[cls]) {
      t_cache.head[cls] = b->next;
      --t_cache.count[cls];
      return b;
    }
    auto* raw = static_cast<uint8_t*>(std::malloc(kHeader + block_size(static_cast<uint8_t>(cls))));
    if (!raw) return nullptr;
    raw[0] = static_cast<uint8_t>(cls);
    return raw + kHeader;
  }
  auto* raw = static_cast<uint8_t*>(std::malloc(kHeader + size));
  if (!raw) return nullptr;
  raw[0] = kUncached;
  return raw + kHeader;
}

void pool_free(void* ptr, void*) {
  if (!ptr) return;
  uint8_t* raw = static_cast<uint8_t*>(ptr) - kHeader;
  const uint8_t cls = raw[0];
  if (cls != kUncached && t_cache.count[cls] < kMaxPerClass) {
    auto* b = static_cast<FreeBlock*>(ptr);
    b->next = t_cache.head[cls];
    t_cache.head[cls] = b;
    ++t_cache.count[cls];
    return;
  }
  std::free(raw);
}

void* pool_calloc(size_t n, size_t size, void* ud) {
  if (size && n > SIZE_MAX / size) return nullptr;
  void* p = pool_malloc(n * size, ud);
  if (p) std::memset(p, 0, n * size);
  return p;
}

void* pool_realloc(void* ptr, size_t size, void* ud) {
  if (!ptr) return pool_malloc(size, ud);
  uint8_t* raw = static_cast<uint8_t*>(ptr) - kHeader;
  if (raw[0] == kUncached) {
    auto* grown = static_cast<uint8_t*>(std::realloc(raw, kHeader + size));
    return grown ? grown + kHeader : nullptr;
  }
  const size_t have = block_size(raw[0]);
  if (size <= have) return ptr;
  void* p = pool_malloc(size, ud);
  if (!p) return nullptr;
  std::memcpy(p, ptr, have);
  pool_free(ptr, ud);
  return p;
}

}  // namespace

std::string_view view(nghttp2_rcbuf* b) {
  const nghttp2_vec v = nghttp2_rcbuf_get_buf(b);
  return {reinterpret_cast<const char*>(v.base), v.len};
}

void drop_refs(std::vector<nghttp2_rcbuf*>& refs) {
  for (nghttp2_rcbuf* r : refs)
    nghttp2_rcbuf_decref(r);
  refs.clear();
}

void push_nv(std::vector<nghttp2_nv>& nv, std::string_view name, std::string_view value) {
  nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                value.size(), NGHTTP2_NV_FLAG_NONE});
}

nghttp2_option* new_options(uint32_t max_continuations) {
  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) return nullptr;
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
#ifdef EGW_NGHTTP2_MAX_CONTINUATIONS
  nghttp2_option_set_max_continuations(opt, max_continuations);
#else
  (void)max_continuations;
#endif
  return opt;
}

bool submit_settings(nghttp2_session* session, std::span<const nghttp2_settings_entry> iv,
                     uint32_t connection_window) {
  if (nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, iv.data(), iv.size()) != 0) {
    return false;
  }
  if (connection_window > 65535) {
    nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0,
                                          static_cast<int32_t>(connection_window));
  }
  return true;
}

void terminate_after_recv_error(nghttp2_session* session, ssize_t rv) {
  uint32_t code = 0;
  if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
    code = NGHTTP2_PROTOCOL_ERROR;
  } else if (rv == NGHTTP2_ERR_CALLBACK_FAILURE || rv == NGHTTP2_ERR_NOMEM) {
    code = NGHTTP2_INTERNAL_ERROR;
  } else if (rv == NGHTTP2_ERR_FLOODED) {
    code = NGHTTP2_ENHANCE_YOUR_CALM;
#ifdef EGW_NGHTTP2_MAX_CONTINUATIONS
  } else if (rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
    code = NGHTTP2_ENHANCE_YOUR_CALM;
#endif
  } else {
    return;
  }
  nghttp2_session_terminate_session(session, code);
}

ssize_t send_frames(nghttp2_session* session, Sink& out, size_t budget) {
  size_t produced = 0;
  while (produced < budget) {
    const uint8_t* p = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session, &p);
    if (n <= 0) return n;
    out.write(p, static_cast<size_t>(n));
    produced += static_cast<size_t>(n);
  }
  return 0;
}

ssize_t body_read_result(nghttp2_session* session, int32_t id, size_t n, bool eof,
                         std::span<const proto::http::Field> trailers,
                         std::vector<nghttp2_nv>& scratch, uint32_t* flags) {
  if (n == 0 && !eof) return NGHTTP2_ERR_DEFERRED;
  *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (eof) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    scratch.clear();
    for (const auto& f : trailers)
      push_nv(scratch, f.name, f.value);
    if (!scratch.empty() &&
        nghttp2_submit_trailer(session, id, scratch.data(), scratch.size()) == 0) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
  }
  return static_cast<ssize_t>(n);
}

nghttp2_mem* allocator() {
  static nghttp2_mem pooled = {nullptr, pool_malloc, pool_free, pool_calloc, pool_realloc};
  return kPooled ? &pooled : nullptr;  // null: nghttp2's default (malloc)
}

}  // namespace egw::proto::h2
