#include "src/accesslog/format.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>

#include <cstring>

namespace egw::accesslog {

namespace {

constexpr const char* kNames[] = {
    "time",
    "client",
    "client_port",
    "listener",
    "protocol",
    "version",
    "method",
    "authority",
    "path",
    "status",
    "bytes_in",
    "bytes_out",
    "cluster",
    "endpoint",
    "retries",
    "termination",
    "tls_version",
    "tls_cipher",
    "sni",
    "user_agent",
    "referer",
    "accept_to_headers_us",
    "tls_handshake_us",
    "queue_wait_us",
    "connect_us",
    "ttfb_us",
    "total_us",
};
static_assert(std::size(kNames) == static_cast<size_t>(Field::kCount));

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// A bounded writer: once something does not fit, it stops and says so.
struct Out {
  char* p;
  char* end;
  bool full = false;

  void put(char c) {
    if (p == end) {
      full = true;
      return;
    }
    *p++ = c;
  }
  void put(std::string_view s) {
    if (static_cast<size_t>(end - p) < s.size()) {
      full = true;
      return;
    }
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  }
  void num(uint64_t v) {
    char buf[20];
    size_t n = 0;
    do {
      buf[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v);
    if (static_cast<size_t>(end - p) < n) {
      full = true;
      return;
    }
    while (n)
      *p++ = buf[--n];
  }
  void hex2(unsigned char c) {
    static constexpr char kHex[] = "0123456789abcdef";
    put(kHex[c >> 4]);
    put(kHex[c & 15]);
  }
};

// The seconds part of a time, formatted once per second per thread.
struct TimeCache {
  int64_t sec = -1;
  char iso[32];  // 2026-12-03T18:05:01
  char clf[32];  // 03/Dec/2026:18:05:01 +0000
};

const TimeCache& time_of(uint64_t ns) {
  thread_local TimeCache c;
  const auto sec = static_cast<int64_t>(ns / 1'000'000'000u);
  if (sec != c.sec) {
    c.sec = sec;
    const time_t t = static_cast<time_t>(sec);
    tm g{};
    gmtime_r(&t, &g);
    strftime(c.iso, sizeof(c.iso), "%Y-%m-%dT%H:%M:%S", &g);
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char tail[24];
    strftime(tail, sizeof(tail), "%Y:%H:%M:%S +0000", &g);
    const int d = g.tm_mday;
    c.clf[0] = static_cast<char>('0' + d / 10);
    c.clf[1] = static_cast<char>('0' + d % 10);
    c.clf[2] = '/';
    std::memcpy(c.clf + 3, kMonths[g.tm_mon % 12], 3);
    c.clf[6] = '/';
    std::strcpy(c.clf + 7, tail);
  }
  return c;
}

void iso_time(Out& o, uint64_t ns) {
  o.put(time_of(ns).iso);
  o.put('.');
  const uint64_t ms = ns / 1'000'000u % 1000;
  o.put(static_cast<char>('0' + ms / 100));
  o.put(static_cast<char>('0' + ms / 10 % 10));
  o.put(static_cast<char>('0' + ms % 10));
  o.put('Z');
}

// The client's IP as text (no port).
std::string_view ip_text(const SocketAddress* a, char (&buf)[INET6_ADDRSTRLEN]) {
  if (!a) return {};
  const std::string_view raw = a->ip_bytes();
  const int family = raw.size() == 16 ? AF_INET6 : raw.size() == 4 ? AF_INET : 0;
  if (!family || !inet_ntop(family, raw.data(), buf, sizeof(buf))) return {};
  return buf;
}

void json_string(Out& o, std::string_view s) {
  o.put('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      o.put('\\');
      o.put(ch);
    } else if (c == '\n') {
      o.put("\\n");
    } else if (c == '\r') {
      o.put("\\r");
    } else if (c == '\t') {
      o.put("\\t");
    } else if (c < 0x20 || c > 0x7e) {
      o.put("\\u00");
      o.hex2(c);
    } else {
      o.put(ch);
    }
  }
  o.put('"');
}

// Text formats: printable ASCII as is, the rest as \xHH; "-" when empty.
void text(Out& o, std::string_view s) {
  if (s.empty()) {
    o.put('-');
    return;
  }
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      o.put('\\');
      o.put(ch);
    } else if (c < 0x20 || c > 0x7e) {
      o.put("\\x");
      o.hex2(c);
    } else {
      o.put(ch);
    }
  }
}

std::string_view string_field(const Record& r, Field f) {
  switch (f) {
    case Field::kListener:
      return r.listener;
    case Field::kProtocol:
      return r.protocol;
    case Field::kVersion:
      return r.version;
    case Field::kMethod:
      return r.method;
    case Field::kAuthority:
      return r.authority;
    case Field::kPath:
      return r.path;
    case Field::kCluster:
      return r.cluster;
    case Field::kEndpoint:
      return r.endpoint;
    case Field::kTermination:
      return r.termination;
    case Field::kTlsVersion:
      return r.tls_version;
    case Field::kTlsCipher:
      return r.tls_cipher;
    case Field::kSni:
      return r.sni;
    case Field::kUserAgent:
      return r.user_agent;
    case Field::kReferer:
      return r.referer;
    default:
      return {};
  }
}

bool is_phase(Field f) {
  return f >= Field::kAcceptToHeaders && f <= Field::kTotal;
}

// One field in a text format (json = false) or as a JSON value.
void field(Out& o, const Record& r, Field f, bool json) {
  char ip[INET6_ADDRSTRLEN];
  switch (f) {
    case Field::kTime:
      if (json) o.put('"');
      iso_time(o, r.time_ns);
      if (json) o.put('"');
      return;
    case Field::kClient: {
      const std::string_view s = ip_text(r.client, ip);
      if (json) {
        s.empty() ? o.put("null") : json_string(o, s);
      } else {
        text(o, s);
      }
      return;
    }
    case Field::kClientPort:
      if (r.client) {
        o.num(r.client->port());
      } else {
        o.put(json ? "null" : "-");
      }
      return;
    case Field::kStatus:
      if (r.status) {
        o.num(r.status);
      } else {
        o.put(json ? "null" : "-");
      }
      return;
    case Field::kBytesIn:
      o.num(r.bytes_in);
      return;
    case Field::kBytesOut:
      o.num(r.bytes_out);
      return;
    case Field::kRetries:
      o.num(r.retries);
      return;
    default:
      break;
  }
  if (is_phase(f)) {
    const int64_t us =
        r.phase_us[static_cast<size_t>(f) - static_cast<size_t>(Field::kAcceptToHeaders)];
    if (us < 0) {
      o.put(json ? "null" : "-");
    } else {
      o.num(static_cast<uint64_t>(us));
    }
    return;
  }
  const std::string_view s = string_field(r, f);
  if (json) {
    s.empty() ? o.put("null") : json_string(o, s);
  } else {
    text(o, s);
  }
}

}  // namespace

const char* termination_of(uint16_t status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 404:
      return "no_route";
    case 405:
      return "method_not_allowed";
    case 408:
      return "request_timeout";
    case 413:
      return "body_too_large";
    case 414:
      return "uri_too_long";
    case 431:
      return "headers_too_large";
    case 501:
      return "not_implemented";
    case 502:
      return "bad_gateway";
    case 503:
      return "unavailable";
    case 504:
      return "gateway_timeout";
    default:
      return "proxy_error";
  }
}

const char* name(Field f) {
  return f < Field::kCount ? kNames[static_cast<size_t>(f)] : "?";
}

bool Format::compile(std::string_view spec, Format& out, std::string& error) {
  out = Format();
  if (spec == "json") {
    out.kind_ = Kind::kJson;
    return true;
  }
  if (spec == "combined") {
    out.kind_ = Kind::kCombined;
    return true;
  }
  out.kind_ = Kind::kTemplate;
  if (spec.empty()) {
    error = "an empty format (\"json\", \"combined\" or a template with %fields)";
    return false;
  }
  std::string lit;
  auto flush = [&] {
    if (!lit.empty()) out.pieces_.push_back({false, Field::kCount, std::move(lit)});
    lit.clear();
  };
  for (size_t i = 0; i < spec.size(); ++i) {
    const auto c = static_cast<unsigned char>(spec[i]);
    if (c < 0x20 || c == 0x7f) {
      error = "a control byte at column " + std::to_string(i + 1) +
              " of the format (lines end by themselves)";
      return false;
    }
    if (c != '%') {
      lit += static_cast<char>(c);
      continue;
    }
    if (i + 1 < spec.size() && spec[i + 1] == '%') {
      lit += '%';
      ++i;
      continue;
    }
    std::string_view name;
    size_t next;
    if (i + 1 < spec.size() && spec[i + 1] == '{') {
      const size_t close = spec.find('}', i + 2);
      if (close == std::string_view::npos) {
        error = "'%{' without '}' at column " + std::to_string(i + 1);
        return false;
      }
      name = spec.substr(i + 2, close - i - 2);
      next = close;
    } else {
      size_t j = i + 1;
      while (j < spec.size() && name_char(spec[j]))
        ++j;
      name = spec.substr(i + 1, j - i - 1);
      next = j - 1;
    }
    if (name.empty()) {
      error = "a '%' without a field name at column " + std::to_string(i + 1) +
              " (write %% for a percent sign)";
      return false;
    }
    size_t k = 0;
    while (k < static_cast<size_t>(Field::kCount) && name != kNames[k])
      ++k;
    if (k == static_cast<size_t>(Field::kCount)) {
      std::string all;
      for (const char* n : kNames)
        all += (all.empty() ? "" : ", ") + std::string(n);
      error = "unknown field '%" + std::string(name) + "' (fields: " + all + ")";
      return false;
    }
    flush();
    out.pieces_.push_back({true, static_cast<Field>(k), {}});
    i = next;
  }
  flush();
  return true;
}

size_t Format::append(const Record& r, char* buf, size_t room) const {
  Out o{buf, buf + room};
  switch (kind_) {
    case Kind::kJson:
      o.put('{');
      for (size_t k = 0; k < static_cast<size_t>(Field::kCount); ++k) {
        if (k) o.put(',');
        o.put('"');
        o.put(kNames[k]);
        o.put("\":");
        field(o, r, static_cast<Field>(k), true);
      }
      o.put('}');
      break;
    case Kind::kCombined: {
      char ip[INET6_ADDRSTRLEN];
      text(o, ip_text(r.client, ip));
      o.put(" - - [");
      o.put(time_of(r.time_ns).clf);
      o.put("] \"");
      text(o, r.method);
      o.put(' ');
      text(o, r.path);
      o.put(' ');
      text(o, r.version.empty() ? r.protocol : r.version);
      o.put("\" ");
      field(o, r, Field::kStatus, false);
      o.put(' ');
      o.num(r.bytes_out);
      o.put(" \"");
      text(o, r.referer);
      o.put("\" \"");
      text(o, r.user_agent);
      o.put('"');
      break;
    }
    case Kind::kTemplate:
      for (const Piece& p : pieces_) {
        if (p.field) {
          field(o, r, p.f, false);
        } else {
          o.put(p.text);
        }
      }
      break;
  }
  o.put('\n');
  if (o.full) return 0;
  return static_cast<size_t>(o.p - buf);
}

}  // namespace egw::accesslog
