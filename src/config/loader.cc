// The TOML loader: the only user of toml++ in the project.
//
// One table of key specifications per section (name, type, default, one-line
// description) drives everything: unknown-key detection, defaults, and the
// generated example configuration, so the three can never drift apart.
#include "src/config/loader.h"

#include <fmt/format.h>

#include <toml++/toml.h>
#include <algorithm>
#include <charconv>
#include <set>
#include <span>
#include <thread>

namespace egw::config {
namespace {

enum class Kind : uint8_t { kString, kInt, kBool, kStringOrList, kTable, kArrayOfTables, kArray };

struct KeySpec {
  std::string_view name;
  Kind kind;
  std::string_view def;  // the default as TOML text; "" = required or no default
  std::string_view doc;
  std::string_view example = "";  // for required keys: a value for the example file
};

// --- the defaults table ------------------------------------------------------

constexpr KeySpec kTopKeys[] = {
    {"global", Kind::kTable, "", "process-wide settings"},
    {"listener", Kind::kArrayOfTables, "", "where downstream connections arrive"},
    {"cluster", Kind::kArrayOfTables, "", "named sets of upstream endpoints"},
};

constexpr KeySpec kGlobalKeys[] = {
    {"workers", Kind::kInt, "0", "worker threads, one io_uring ring each; 0 = one per CPU"},
    {"grace_period_ms", Kind::kInt, "10000",
     "on SIGTERM: stop accepting, let sessions finish for this long, then close"},
    {"log_level", Kind::kString, "\"info\"", "trace | debug | info | warn | error | off"},
    {"buffer_count", Kind::kInt, "2048", "provided receive buffers per worker (power of two)"},
    {"buffer_size", Kind::kInt, "16384", "bytes per receive buffer"},
    {"max_pipes", Kind::kInt, "1024",
     "splice pipes per worker (2 descriptors each); past it, L4 relays copy"},
    {"pipe_size", Kind::kInt, "1048576", "bytes per splice pipe (capped by fs.pipe-max-size)"},
    {"max_sessions", Kind::kInt, "100000", "sessions per worker; past it, accepts pause"},
};

constexpr KeySpec kListenerKeys[] = {
    {"name", Kind::kString, "", "required, unique", "\"tcp_in\""},
    {"bind", Kind::kStringOrList, "",
     "required: \"127.0.0.1:9000\", \"[::1]:9000\", or a list of them",
     "[\"127.0.0.1:9000\", \"[::1]:9000\"]"},
    {"protocol", Kind::kString, "\"tcp\"", "tcp (L4 passthrough) | http"},
    {"cluster", Kind::kString, "", "required: the cluster that serves this listener", "\"app\""},
    {"client_idle_timeout_ms", Kind::kInt, "60000",
     "close a session after this long without a byte either way"},
};

constexpr KeySpec kClusterKeys[] = {
    {"name", Kind::kString, "", "required, unique", "\"app\""},
    {"balancer", Kind::kString, "\"round_robin\"",
     "round_robin | weighted_round_robin | least_connections | random (power of two choices) | "
     "source_hash (Maglev on the client address)"},
    {"connect_timeout_ms", Kind::kInt, "2000", "upstream connect timeout"},
    {"server_idle_timeout_ms", Kind::kInt, "60000",
     "close a session after this long without a byte either way"},
    {"queue_timeout_ms", Kind::kInt, "5000",
     "how long a session waits for an endpoint below its maxconn"},
    {"max_queue", Kind::kInt, "10000", "sessions waiting per worker; past it, refused at once"},
    {"retries", Kind::kInt, "2", "connect attempts after the first one fails"},
    {"redispatch", Kind::kBool, "true", "retry on another endpoint rather than the same one"},
    {"endpoints", Kind::kArray, "", "required: one table per endpoint (keys below)",
     "[\n  { address = \"127.0.0.1:9001\" },\n  { address = \"127.0.0.1:9002\", weight = 3, "
     "maxconn = 100 },\n  { address = \"127.0.0.1:9003\", backup = true },\n]"},
    {"health_check", Kind::kTable, "", "active health checks (off when absent)"},
};

constexpr KeySpec kEndpointKeys[] = {
    {"address", Kind::kString, "", "required: \"IPv4:port\" or \"[IPv6]:port\""},
    {"weight", Kind::kInt, "1", "relative share of new sessions (0 = drain), at most 256"},
    {"maxconn", Kind::kInt, "0",
     "concurrent sessions to this endpoint (all workers); 0 = unlimited; excess waits in the "
     "queue"},
    {"backup", Kind::kBool, "false", "used only when no primary endpoint is up"},
};

constexpr KeySpec kHealthKeys[] = {
    {"type", Kind::kString, "\"tcp\"", "tcp (connect) | http (request, check the status)"},
    {"interval_ms", Kind::kInt, "2000", "time between checks of one endpoint"},
    {"timeout_ms", Kind::kInt, "1000", "a check slower than this fails"},
    {"rise", Kind::kInt, "2", "consecutive successes that mark a down endpoint up"},
    {"fall", Kind::kInt, "3", "consecutive failures that mark an up endpoint down"},
    {"path", Kind::kString, "\"/\"", "http: request path"},
    {"expect_status", Kind::kInt, "200", "http: the status that counts as healthy"},
};

// --- reading -----------------------------------------------------------------

SourceLoc loc_of(const toml::source_region& r) {
  return SourceLoc{static_cast<uint32_t>(r.begin.line), static_cast<uint32_t>(r.begin.column)};
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return "a date/time";
    default:
      return "nothing";
  }
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kString:
      return "a string";
    case Kind::kInt:
      return "an integer";
    case Kind::kBool:
      return "a boolean";
    case Kind::kStringOrList:
      return "a string or an array of strings";
    case Kind::kTable:
      return "a table";
    case Kind::kArrayOfTables:
      return "an array of tables";
    case Kind::kArray:
      return "an array";
  }
  return "?";
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

class Context {
 public:
  explicit Context(std::string path) : path_(std::move(path)) {}
  template <class... A>
  void error(SourceLoc loc, fmt::format_string<A...> f, A&&... args) {
    errors_.push_back(ConfigError{path_, loc, fmt::format(f, std::forward<A>(args)...)});
  }
  std::vector<ConfigError>& errors() { return errors_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<ConfigError> errors_;
};

// Reads the keys of one table against its specification. Unknown keys and
// wrong types are reported as they are found; absent keys take the default
// from the spec.
class Reader {
 public:
  Reader(Context& ctx, const toml::table& t, std::string where, std::span<const KeySpec> specs)
      : ctx_(ctx), t_(t), where_(std::move(where)), specs_(specs) {
    for (auto&& [key, value] : t_) {
      const std::string_view k = key.str();
      if (spec(k)) continue;
      std::string expected;
      std::string_view suggestion;
      size_t best = 3;
      for (const auto& s : specs_) {
        if (!expected.empty()) expected += ", ";
        expected += s.name;
        const size_t d = edit_distance(k, s.name);
        if (d < best) {
          best = d;
          suggestion = s.name;
        }
      }
      if (!suggestion.empty()) {
        ctx_.error(loc_of(key.source()), "unknown key '{}' in {}; did you mean '{}'?", k, where_,
                   suggestion);
      } else {
        ctx_.error(loc_of(key.source()), "unknown key '{}' in {} (expected one of: {})", k, where_,
                   expected);
      }
    }
  }

  SourceLoc table_loc() const { return loc_of(t_.source()); }
  SourceLoc loc(std::string_view key) const {
    const toml::node* n = t_.get(key);
    return n ? loc_of(n->source()) : table_loc();
  }
  const toml::node* node(std::string_view key) const { return t_.get(key); }
  const std::string& where() const { return where_; }

  // A required or defaulted string.
  std::string string(std::string_view key) {
    const KeySpec* s = spec(key);
    const toml::node* n = t_.get(key);
    if (!n) {
      if (s && !s->def.empty()) return std::string(s->def.substr(1, s->def.size() - 2));
      if (s && s->def.empty() && s->kind == Kind::kString && required(key)) {
        ctx_.error(table_loc(), "missing required key '{}' in {}", key, where_);
      }
      return {};
    }
    if (auto v = n->value<std::string>()) return *v;
    wrong_type(*n, key, Kind::kString);
    return {};
  }

  uint32_t u32(std::string_view key, uint64_t min, uint64_t max) {
    const KeySpec* s = spec(key);
    const toml::node* n = t_.get(key);
    int64_t v = 0;
    if (!n) {
      if (s) std::from_chars(s->def.data(), s->def.data() + s->def.size(), v);
      return static_cast<uint32_t>(v);
    }
    if (!n->is_integer()) {
      wrong_type(*n, key, Kind::kInt);
      return static_cast<uint32_t>(min);
    }
    v = *n->value<int64_t>();
    if (v < 0 || static_cast<uint64_t>(v) < min || static_cast<uint64_t>(v) > max) {
      ctx_.error(loc_of(n->source()), "'{}' in {} must be between {} and {}, found {}", key, where_,
                 min, max, v);
      return static_cast<uint32_t>(min);
    }
    return static_cast<uint32_t>(v);
  }

  bool boolean(std::string_view key) {
    const KeySpec* s = spec(key);
    const toml::node* n = t_.get(key);
    if (!n) return s && s->def == "true";
    if (auto v = n->value<bool>()) return *v;
    wrong_type(*n, key, Kind::kBool);
    return false;
  }

  const toml::table* table(std::string_view key) {
    const toml::node* n = t_.get(key);
    if (!n) return nullptr;
    if (const toml::table* t = n->as_table()) return t;
    wrong_type(*n, key, Kind::kTable);
    return nullptr;
  }

  const toml::array* array(std::string_view key, Kind kind) {
    const toml::node* n = t_.get(key);
    if (!n) return nullptr;
    if (const toml::array* a = n->as_array()) return a;
    wrong_type(*n, key, kind);
    return nullptr;
  }

  void wrong_type(const toml::node& n, std::string_view key, Kind expected) {
    ctx_.error(loc_of(n.source()), "'{}' in {} must be {}, found {}", key, where_,
               kind_name(expected), type_name(n));
  }

 private:
  const KeySpec* spec(std::string_view key) const {
    for (const auto& s : specs_) {
      if (s.name == key) return &s;
    }
    return nullptr;
  }
  static bool required(std::string_view key) { return key == "name" || key == "cluster"; }

  Context& ctx_;
  const toml::table& t_;
  std::string where_;
  std::span<const KeySpec> specs_;
};

std::optional<SocketAddress> parse_address(Context& ctx, const toml::node& n, std::string_view what,
                                           std::string* text) {
  auto s = n.value<std::string>();
  if (!s) {
    ctx.error(loc_of(n.source()), "{} must be a string like \"127.0.0.1:9000\", found {}", what,
              type_name(n));
    return std::nullopt;
  }
  if (text) *text = *s;
  auto a = SocketAddress::parse(*s);
  if (!a) {
    ctx.error(loc_of(n.source()),
              "bad {} '{}': expected IPv4:port or [IPv6]:port with a numeric address and a port "
              "of 0-65535",
              what, *s);
  }
  return a;
}

void read_global(Context& ctx, const toml::table* t, GlobalConfig& g) {
  static const toml::table kEmpty;
  Reader r(ctx, t ? *t : kEmpty, "[global]", kGlobalKeys);
  g.workers = r.u32("workers", 0, 1024);
  g.grace_period_ms = r.u32("grace_period_ms", 0, 3'600'000);
  const std::string level = r.string("log_level");
  if (auto l = log::parse_level(level)) {
    g.log_level = *l;
  } else {
    ctx.error(r.loc("log_level"),
              "log_level '{}' is not one of trace, debug, info, warn, error, off", level);
  }
  g.buffer_count = r.u32("buffer_count", 16, 32768);
  if (g.buffer_count & (g.buffer_count - 1)) {
    ctx.error(r.loc("buffer_count"), "buffer_count must be a power of two, found {}",
              g.buffer_count);
  }
  g.buffer_size = r.u32("buffer_size", 1024, 1u << 20);
  if (g.buffer_size % 64) {
    ctx.error(r.loc("buffer_size"), "buffer_size must be a multiple of 64, found {}",
              g.buffer_size);
  }
  g.max_pipes = r.u32("max_pipes", 0, 65536);
  g.pipe_size = r.u32("pipe_size", 4096, 1u << 30);
  g.max_sessions = r.u32("max_sessions", 1, 10'000'000);
}

void read_health(Context& ctx, const toml::table& t, const std::string& where,
                 HealthCheckConfig& h) {
  Reader r(ctx, t, where, kHealthKeys);
  const std::string type = r.string("type");
  if (type == "tcp") {
    h.type = HealthCheckConfig::Type::kTcp;
  } else if (type == "http") {
    h.type = HealthCheckConfig::Type::kHttp;
  } else {
    ctx.error(r.loc("type"), "health check type '{}' is not one of tcp, http", type);
  }
  h.interval_ms = r.u32("interval_ms", 10, 3'600'000);
  h.timeout_ms = r.u32("timeout_ms", 1, 3'600'000);
  h.rise = r.u32("rise", 1, 1000);
  h.fall = r.u32("fall", 1, 1000);
  h.path = r.string("path");
  if (h.path.empty() || h.path.front() != '/') {
    ctx.error(r.loc("path"), "health check path must start with '/', found '{}'", h.path);
  }
  h.expect_status = r.u32("expect_status", 100, 599);
}

// "[[kind]] 'name'" when the table has a string name, else "[[kind]] #n".
std::string section_name(const toml::table& t, std::string_view kind, size_t index) {
  if (auto n = t["name"].value<std::string>(); n && !n->empty()) {
    return fmt::format("[[{}]] '{}'", kind, *n);
  }
  return fmt::format("[[{}]] #{}", kind, index + 1);
}

void read_cluster(Context& ctx, const toml::table& t, size_t index, ClusterConfig& c) {
  const std::string where = section_name(t, "cluster", index);
  Reader r(ctx, t, where, kClusterKeys);
  c.loc = r.table_loc();
  c.name = r.string("name");
  const std::string bal = r.string("balancer");
  if (auto a = balancer::parse_algorithm(bal)) {
    c.balancer = *a;
  } else {
    ctx.error(r.loc("balancer"),
              "balancer '{}' in {} is not one of round_robin, weighted_round_robin, "
              "least_connections, random, source_hash",
              bal, where);
  }
  c.connect_timeout_ms = r.u32("connect_timeout_ms", 1, 3'600'000);
  c.server_idle_timeout_ms = r.u32("server_idle_timeout_ms", 1, 86'400'000);
  c.queue_timeout_ms = r.u32("queue_timeout_ms", 1, 3'600'000);
  c.max_queue = r.u32("max_queue", 0, 10'000'000);
  c.retries = r.u32("retries", 0, 100);
  c.redispatch = r.boolean("redispatch");
  if (const toml::table* h = r.table("health_check")) {
    read_health(ctx, *h, where + " health_check", c.health_check);
  }
  const toml::array* eps = r.array("endpoints", Kind::kArray);
  if (!eps) {
    if (!r.node("endpoints")) ctx.error(c.loc, "missing required key 'endpoints' in {}", where);
    return;
  }
  if (eps->empty()) ctx.error(r.loc("endpoints"), "{} has no endpoints", where);
  for (size_t i = 0; i < eps->size(); ++i) {
    const toml::node& n = *eps->get(i);
    const toml::table* et = n.as_table();
    if (!et) {
      ctx.error(loc_of(n.source()),
                "endpoint #{} of {} must be a table like {{ address = \"127.0.0.1:9001\" }}, "
                "found {}",
                i + 1, where, type_name(n));
      continue;
    }
    EndpointConfig e;
    Reader er(ctx, *et, fmt::format("endpoint #{} of {}", i + 1, where), kEndpointKeys);
    e.loc = er.table_loc();
    if (const toml::node* a = er.node("address")) {
      if (auto addr = parse_address(ctx, *a, "endpoint address", &e.address_text)) {
        e.address = *addr;
        if (addr->port() == 0) ctx.error(loc_of(a->source()), "endpoint port must not be 0");
      }
    } else {
      ctx.error(e.loc, "missing required key 'address' in endpoint #{} of {}", i + 1, where);
    }
    e.weight = er.u32("weight", 0, 256);
    e.maxconn = er.u32("maxconn", 0, 10'000'000);
    e.backup = er.boolean("backup");
    for (const auto& prev : c.endpoints) {
      if (e.address.valid() && prev.address == e.address) {
        ctx.error(e.loc, "duplicate endpoint {} in {} (first at line {})", e.address_text, where,
                  prev.loc.line);
      }
    }
    c.endpoints.push_back(std::move(e));
  }
}

void read_listener(Context& ctx, const toml::table& t, size_t index, ListenerConfig& l) {
  const std::string where = section_name(t, "listener", index);
  Reader r(ctx, t, where, kListenerKeys);
  l.loc = r.table_loc();
  l.name = r.string("name");
  const std::string proto = r.string("protocol");
  if (proto == "tcp") {
    l.protocol = Protocol::kTcp;
  } else if (proto == "http") {
    l.protocol = Protocol::kHttp;
  } else {
    ctx.error(r.loc("protocol"), "protocol '{}' in {} is not one of tcp, http", proto, where);
  }
  l.cluster = r.string("cluster");
  l.client_idle_timeout_ms = r.u32("client_idle_timeout_ms", 1, 86'400'000);
  auto add_bind = [&](const toml::node& n) {
    BindConfig b;
    b.loc = loc_of(n.source());
    if (auto a = parse_address(ctx, n, "bind address", &b.text)) {
      b.address = *a;
      l.binds.push_back(std::move(b));
    }
  };
  if (const toml::node* b = r.node("bind")) {
    if (b->is_string()) {
      add_bind(*b);
    } else if (const toml::array* arr = b->as_array()) {
      if (arr->empty()) ctx.error(loc_of(b->source()), "'bind' in {} is an empty list", where);
      for (const auto& n : *arr)
        add_bind(n);
    } else {
      r.wrong_type(*b, "bind", Kind::kStringOrList);
    }
  } else {
    ctx.error(l.loc, "missing required key 'bind' in {}", where);
  }
}

void validate(Context& ctx, Config& cfg) {
  std::vector<std::pair<std::string, SourceLoc>> seen;
  for (const auto& c : cfg.clusters) {
    if (c.name.empty()) continue;
    for (const auto& [n, loc] : seen) {
      if (n == c.name) {
        ctx.error(c.loc, "duplicate cluster name '{}' (first defined at line {})", c.name,
                  loc.line);
      }
    }
    seen.emplace_back(c.name, c.loc);
  }
  seen.clear();
  std::vector<std::pair<SocketAddress, SourceLoc>> binds;
  for (const auto& l : cfg.listeners) {
    if (!l.name.empty()) {
      for (const auto& [n, loc] : seen) {
        if (n == l.name) {
          ctx.error(l.loc, "duplicate listener name '{}' (first defined at line {})", l.name,
                    loc.line);
        }
      }
      seen.emplace_back(l.name, l.loc);
    }
    if (!l.cluster.empty() && !cfg.find_cluster(l.cluster)) {
      std::string known;
      for (const auto& c : cfg.clusters)
        known += (known.empty() ? "" : ", ") + c.name;
      ctx.error(l.loc, "listener '{}' names cluster '{}', which is not defined (clusters: {})",
                l.name, l.cluster, known.empty() ? "none" : known);
    }
    for (const auto& b : l.binds) {
      for (const auto& [a, loc] : binds) {
        if (a == b.address && b.address.port() != 0) {
          ctx.error(b.loc, "address {} is bound twice (also at line {})", b.text, loc.line);
        }
      }
      binds.emplace_back(b.address, b.loc);
    }
  }
  if (cfg.listeners.empty()) ctx.error(SourceLoc{}, "no [[listener]] defined: nothing to serve");
}

LoadResult load_table(Context& ctx, const toml::table& root) {
  auto cfg = std::make_shared<Config>();
  cfg->path = ctx.path();
  Reader top(ctx, root, "the top level", kTopKeys);
  read_global(ctx, top.table("global"), cfg->global);
  if (const toml::array* cs = top.array("cluster", Kind::kArrayOfTables)) {
    for (size_t i = 0; i < cs->size(); ++i) {
      if (const toml::table* t = cs->get(i)->as_table()) {
        read_cluster(ctx, *t, i, cfg->clusters.emplace_back());
      }
    }
  }
  if (const toml::array* ls = top.array("listener", Kind::kArrayOfTables)) {
    for (size_t i = 0; i < ls->size(); ++i) {
      if (const toml::table* t = ls->get(i)->as_table()) {
        read_listener(ctx, *t, i, cfg->listeners.emplace_back());
      }
    }
  }
  validate(ctx, *cfg);
  if (cfg->global.workers == 0) {
    cfg->global.workers = std::max(1u, std::thread::hardware_concurrency());
  }
  LoadResult out;
  out.errors = std::move(ctx.errors());
  if (out.errors.empty()) out.config = std::move(cfg);
  return out;
}

LoadResult parse(std::string_view text, const std::string& path) {
  Context ctx(path);
  try {
    toml::table root = toml::parse(text, path);
    return load_table(ctx, root);
  } catch (const toml::parse_error& e) {
    ctx.error(loc_of(e.source()), "TOML syntax: {}", e.description());
  }
  LoadResult out;
  out.errors = std::move(ctx.errors());
  return out;
}

void emit_keys(std::string& out, std::span<const KeySpec> specs) {
  for (const auto& s : specs) {
    if (s.kind == Kind::kTable || s.kind == Kind::kArrayOfTables) continue;
    out += fmt::format("# {}\n", s.doc);
    out += fmt::format("{} = {}\n", s.name, s.def.empty() ? s.example : s.def);
  }
}

}  // namespace

std::string ConfigError::to_string() const {
  if (loc.line == 0) return fmt::format("{}: {}", file, message);
  return fmt::format("{}:{}:{}: {}", file, loc.line, loc.column, message);
}

const ClusterConfig* Config::find_cluster(std::string_view name) const {
  for (const auto& c : clusters) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

const char* to_string(Protocol p) {
  return p == Protocol::kTcp ? "tcp" : "http";
}

LoadResult load_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    LoadResult out;
    out.errors.push_back(
        ConfigError{path, {}, fmt::format("cannot open: {}", std::strerror(errno))});
    return out;
  }
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0)
    text.append(buf, n);
  std::fclose(f);
  return parse(text, path);
}

LoadResult load_string(std::string_view text, const std::string& path) {
  return parse(text, path);
}

std::string example_config() {
  std::string out =
      "# ExpressGateway example configuration: every key with its default (required keys\n"
      "# with an example value). Generated from the defaults table in\n"
      "# src/config/loader.cc by `expressgateway --print-example`; do not edit by hand.\n\n"
      "[global]\n";
  emit_keys(out, kGlobalKeys);
  out += "\n[[listener]]\n";
  emit_keys(out, kListenerKeys);
  out += "\n[[cluster]]\n";
  emit_keys(out, kClusterKeys);
  out += "# Endpoint keys:\n";
  for (const auto& s : kEndpointKeys) {
    out += fmt::format("#   {} = {}: {}\n", s.name, s.def.empty() ? "(required)" : s.def, s.doc);
  }
  out += "\n[cluster.health_check]\n";
  emit_keys(out, kHealthKeys);
  return out;
}

}  // namespace egw::config
