// Server::admin_reply: the admin API's commands (docs/operations.md, "Admin
// API"). Runs on the admin thread. It reads the runtime the control thread
// published and the atomics every worker shares (endpoint state, counters);
// what only a worker may read it asks for through the mailbox (Gather) with
// a wait of at most kWorkerWait; a reload runs on the control thread.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "egw/clock.h"
#include "src/server/gather.h"
#include "src/server/server.h"
#include "src/server/worker.h"
#include "uring/probe.h"

namespace egw::server {

namespace {

using json = nlohmann::ordered_json;

constexpr auto kWorkerWait = std::chrono::seconds(1);
constexpr auto kReloadWait = std::chrono::seconds(60);

const char* const kClasses[] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};

// Responses by status class (every protocol), and the same by protocol.
json classes(const std::array<std::array<uint64_t, 6>, 2>& r) {
  json all = json::object();
  for (size_t c = 1; c <= 5; ++c)
    all[kClasses[c]] = r[0][c] + r[1][c];
  return all;
}

json classes_by_protocol(const std::array<std::array<uint64_t, 6>, 2>& r) {
  json by = json::object();
  for (size_t p = 0; p < 2; ++p) {
    json one = json::object();
    for (size_t c = 1; c <= 5; ++c)
      one[kClasses[c]] = r[p][c];
    by[p ? "h2" : "http1"] = std::move(one);
  }
  return by;
}

json endpoint_json(const upstream::Cluster& c, size_t i, uint64_t now_ms) {
  const upstream::EndpointState& ep = c.endpoint(i);
  const config::EndpointConfig& ec = c.endpoint_config(i);
  const char* health = !ep.up() ? "down" : ep.usable(now_ms) ? "up" : "backoff";
  std::string reason = ep.health_reason();
  if (c.config().health_check.type == config::HealthCheckConfig::Type::kNone &&
      reason == "not checked yet")
    reason = "no active health check";
  json j;
  j["cluster"] = c.name();
  j["address"] = ec.address_text;
  j["state"] = upstream::to_string(ep.admin_state());
  j["health"] = health;
  j["reason"] = reason;
  j["weight"] = ep.weight(ec);
  j["weight_source"] = ep.admin_weight() ? "admin" : "file";
  j["maxconn"] = ep.maxconn(ec);
  j["maxconn_source"] = ep.admin_maxconn() ? "admin" : "file";
  j["backup"] = ec.backup;
  j["active"] = ep.active();
  j["sessions"] = ep.sessions.load(std::memory_order_relaxed);
  j["connect_failures"] = ep.connect_failures.load(std::memory_order_relaxed);
  j["bytes_to"] = ep.bytes_to.load(std::memory_order_relaxed);
  j["bytes_from"] = ep.bytes_from.load(std::memory_order_relaxed);
  return j;
}

json error(std::string_view message) {
  return json{{"ok", false}, {"error", message}};
}

std::string names(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v)
    out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "(none)" : out;
}

json phases_json(const stats::PhaseLatency& lat) {
  json out = json::array();
  for (size_t k = 0; k < lat.phases.size(); ++k) {
    const Histogram& h = lat.phases[k];
    json p;
    p["phase"] = stats::to_string(static_cast<stats::Phase>(k));
    p["count"] = h.count();
    p["mean_us"] = h.count() ? static_cast<uint64_t>(h.mean() + 0.5) : 0;
    p["p50_us"] = h.value_at_percentile(50);
    p["p90_us"] = h.value_at_percentile(90);
    p["p99_us"] = h.value_at_percentile(99);
    p["p99_9_us"] = h.value_at_percentile(99.9);
    p["max_us"] = h.max();
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

std::string Server::admin_reply(std::string_view line) {
  json reply;
  auto cmd = parse_admin_command(line);
  if (!cmd) {
    reply = error(cmd.error);
  } else {
    try {
      return admin_execute(*cmd);
    } catch (const std::exception& e) {
      // Only allocation failure or a JSON encoding bug gets here.
      reply = error(fmt::format("internal error: {}", e.what()));
    }
  }
  return reply.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string Server::admin_execute(const AdminCommand& cmd) {
  RuntimePtr rt;
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(published_mu_);
    rt = published_;
    generation = published_generation_;
  }
  const config::Config& cfg = *rt->config;
  const uint64_t now_ms = clock::now_ns() / 1'000'000u;
  json r;
  r["ok"] = true;
  r["command"] = cmd.text;

  auto find_cluster = [&](const std::string& name) -> const upstream::Cluster* {
    const int ci = rt->cluster_index(name);
    return ci < 0 ? nullptr : rt->clusters[static_cast<size_t>(ci)].get();
  };
  auto cluster_names = [&] {
    std::vector<std::string> v;
    for (const auto& c : cfg.clusters)
      v.push_back(c.name);
    return names(v);
  };
  auto dump = [](const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); };

  switch (cmd.kind) {
    case AdminCommand::Kind::kHelp: {
      json lines = json::array();
      std::string_view u = admin_usage();
      while (!u.empty()) {
        const size_t nl = u.find('\n');
        lines.push_back(u.substr(0, nl));
        u.remove_prefix(nl == std::string_view::npos ? u.size() : nl + 1);
      }
      r["commands"] = std::move(lines);
      return dump(r);
    }

    case AdminCommand::Kind::kShowInfo: {
      const double now_s =
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      r["version"] = EGW_VERSION;
      r["pid"] = ::getpid();
      r["uptime_s"] = static_cast<uint64_t>(now_s - start_time_s_);
      r["started"] = static_cast<uint64_t>(start_time_s_);
      r["generation"] = generation;
      r["workers"] = workers_.size();
      r["config"] = options_.config_path;
      r["draining"] = draining_.load();
      // A binary upgrade's old process, until it has drained and exited.
      if (const pid_t old = predecessor_pid_.load()) r["previous_pid"] = old;
      json ls = json::array();
      for (size_t l = 0; l < cfg.listeners.size(); ++l) {
        json binds = json::array();
        for (const auto& b : rt->binds[l])
          binds.push_back(b->address.to_string());
        ls.push_back({{"name", cfg.listeners[l].name},
                      {"protocol", config::to_string(cfg.listeners[l].protocol)},
                      {"bind", std::move(binds)},
                      {"tls", cfg.listeners[l].tls.has_value()},
                      {"proxy_protocol", cfg.listeners[l].proxy_protocol.has_value()}});
      }
      r["listeners"] = std::move(ls);
      json cs = json::array();
      for (const auto& c : rt->clusters)
        cs.push_back({{"name", c->name()},
                      {"balancer", balancer::to_string(c->config().balancer)},
                      {"endpoints", c->size()}});
      r["clusters"] = std::move(cs);
      r["metrics"] = cfg.admin.metrics ? json(cfg.admin.metrics_text) : json(nullptr);
      const uring::Features& f = uring::features();
      r["kernel"] = {{"release", f.kernel_release},
                     {"io_uring",
                      {{"ext_arg", f.ext_arg},
                       {"provided_buffer_rings", f.buf_ring},
                       {"multishot_accept", f.multishot_accept},
                       {"multishot_recv", f.multishot_recv},
                       {"recv_bundle", f.recv_bundle},
                       {"send_zc", f.send_zc},
                       {"msg_ring", f.msg_ring},
                       {"registered_ring", f.registered_ring}}},
                     {"ktls", f.ktls},
                     {"ktls_reason", f.ktls_reason},
                     {"pipe_max_size", f.pipe_max_size}};
      return dump(r);
    }

    case AdminCommand::Kind::kShowEndpoints: {
      const upstream::Cluster* only = nullptr;
      if (!cmd.cluster.empty() && !(only = find_cluster(cmd.cluster)))
        return dump(
            error(fmt::format("no cluster '{}' (clusters: {})", cmd.cluster, cluster_names())));
      json eps = json::array();
      for (const auto& c : rt->clusters) {
        if (only && c.get() != only) continue;
        for (size_t i = 0; i < c->size(); ++i)
          eps.push_back(endpoint_json(*c, i, now_ms));
      }
      r["endpoints"] = std::move(eps);
      return dump(r);
    }

    case AdminCommand::Kind::kShowStats: {
      auto g = Gather<WorkerCounts>::run(
          workers_, [](Worker& w, WorkerCounts& out) { w.collect_counts(out); }, kWorkerWait);
      std::map<std::string, WorkerCounts::Named> ls, cs;
      unsigned answered = 0;
      {
        auto lock = g->lock();
        for (size_t i = 0; i < g->results.size(); ++i) {
          if (!g->answered[i]) continue;
          ++answered;
          auto add = [](std::map<std::string, WorkerCounts::Named>& to,
                        const std::map<std::string, WorkerCounts::Named>& from) {
            for (const auto& [name, n] : from) {
              auto& t = to[name];
              for (size_t p = 0; p < 2; ++p)
                for (size_t c = 0; c < 6; ++c)
                  t.responses[p][c] += n.responses[p][c];
              t.accepted += n.accepted;
              t.connect_failures += n.connect_failures;
              t.retries += n.retries;
              t.refused += n.refused;
              t.queue_timeouts += n.queue_timeouts;
              t.active += n.active;
            }
          };
          add(ls, g->results[i].listeners);
          add(cs, g->results[i].clusters);
        }
      }
      r["generation"] = generation;
      r["workers_answered"] = answered;
      json jl = json::array();
      for (const auto& l : cfg.listeners) {
        const WorkerCounts::Named& n = ls[l.name];
        jl.push_back({{"name", l.name},
                      {"protocol", config::to_string(l.protocol)},
                      {"sessions_active", n.active},
                      {"sessions_total", n.accepted},
                      {"responses", classes(n.responses)},
                      {"responses_by_protocol", classes_by_protocol(n.responses)}});
      }
      r["listeners"] = std::move(jl);
      json jc = json::array();
      json eps = json::array();
      for (const auto& c : rt->clusters) {
        const WorkerCounts::Named& n = cs[c->name()];
        size_t up = 0;
        for (size_t i = 0; i < c->size(); ++i) {
          up += c->endpoint(i).up() ? 1 : 0;
          eps.push_back(endpoint_json(*c, i, now_ms));
        }
        jc.push_back({{"name", c->name()},
                      {"endpoints", c->size()},
                      {"endpoints_up", up},
                      {"queue", c->total_waiting()},
                      {"responses", classes(n.responses)},
                      {"responses_by_protocol", classes_by_protocol(n.responses)},
                      {"connect_failures", n.connect_failures},
                      {"retries", n.retries},
                      {"refused", n.refused},
                      {"queue_timeouts", n.queue_timeouts}});
      }
      r["clusters"] = std::move(jc);
      r["endpoints"] = std::move(eps);
      auto sum = [&](std::atomic<uint64_t> stats::WorkerStats::*m) {
        uint64_t v = 0;
        for (const auto& w : workers_)
          v += (w->stats().*m).load(std::memory_order_relaxed);
        return v;
      };
      using S = stats::WorkerStats;
      r["totals"] = {{"sessions_active", sum(&S::active)},
                     {"sessions_accepted", sum(&S::accepted)},
                     {"http_requests", sum(&S::http_requests)},
                     {"bytes_in", sum(&S::bytes_in)},
                     {"bytes_out", sum(&S::bytes_out)},
                     {"access_log_lines", sum(&S::access_log_lines)},
                     {"access_log_dropped", sum(&S::access_log_dropped)},
                     {"errors",
                      {{"proxy_error_responses", sum(&S::http_errors)},
                       {"connect_failures", sum(&S::connect_failures)},
                       {"retries", sum(&S::retries)},
                       {"refused_no_endpoint", sum(&S::refused_no_endpoint)},
                       {"refused_queue_full", sum(&S::refused_queue_full)},
                       {"queue_timeouts", sum(&S::queue_timeouts)},
                       {"request_timeouts", sum(&S::request_timeouts)},
                       {"response_timeouts", sum(&S::response_timeouts)},
                       {"slow_bodies", sum(&S::slow_bodies)},
                       {"idle_timeouts", sum(&S::idle_timeouts)},
                       {"tls_failures", sum(&S::tls_failures)},
                       {"tls_timeouts", sum(&S::tls_timeouts)},
                       {"tls_upstream_failures", sum(&S::tls_upstream_failures)},
                       {"proxy_protocol_untrusted", sum(&S::proxy_untrusted)},
                       {"proxy_protocol_invalid", sum(&S::proxy_invalid)},
                       {"proxy_protocol_timeouts", sum(&S::proxy_timeouts)}}}};
      return dump(r);
    }

    case AdminCommand::Kind::kShowLatency: {
      const bool listener_known = std::any_of(cfg.listeners.begin(), cfg.listeners.end(),
                                              [&](const auto& l) { return l.name == cmd.name; });
      if (cmd.scope == "listener" && !listener_known) {
        std::vector<std::string> v;
        for (const auto& l : cfg.listeners)
          v.push_back(l.name);
        return dump(error(fmt::format("no listener '{}' (listeners: {})", cmd.name, names(v))));
      }
      if (cmd.scope == "cluster" && !find_cluster(cmd.name))
        return dump(
            error(fmt::format("no cluster '{}' (clusters: {})", cmd.name, cluster_names())));
      using Maps = std::pair<std::map<std::string, stats::PhaseLatency>,
                             std::map<std::string, stats::PhaseLatency>>;
      auto g = Gather<Maps>::run(
          workers_, [](Worker& w, Maps& m) { w.merge_latency(m.first, m.second); }, kWorkerWait);
      std::map<std::string, stats::PhaseLatency> ls, cs;
      unsigned answered = 0;
      {
        auto lock = g->lock();
        for (size_t i = 0; i < g->results.size(); ++i) {
          if (!g->answered[i]) continue;
          ++answered;
          for (const auto& [name, lat] : g->results[i].first)
            if (cmd.scope != "cluster" && (cmd.scope.empty() || name == cmd.name))
              ls[name].merge(lat);
          for (const auto& [name, lat] : g->results[i].second)
            if (cmd.scope != "listener" && (cmd.scope.empty() || name == cmd.name))
              cs[name].merge(lat);
        }
      }
      r["workers_answered"] = answered;
      r["unit"] = "microseconds";
      auto list = [](const std::map<std::string, stats::PhaseLatency>& m) {
        json out = json::array();
        for (const auto& [name, lat] : m)
          out.push_back({{"name", name}, {"phases", phases_json(lat)}});
        return out;
      };
      if (cmd.scope != "cluster") r["listeners"] = list(ls);
      if (cmd.scope != "listener") r["clusters"] = list(cs);
      return dump(r);
    }

    case AdminCommand::Kind::kShowSessions: {
      const uint32_t limit = cmd.verbose ? cmd.limit : 0;
      auto g = Gather<WorkerSessions>::run(
          workers_, [limit](Worker& w, WorkerSessions& out) { w.collect_sessions(out, limit); },
          kWorkerWait);
      std::map<std::pair<std::string, std::string>, uint64_t> by_state;
      std::map<std::string, uint64_t> by_listener;
      uint64_t total = 0;
      unsigned answered = 0;
      json rows = json::array();
      {
        auto lock = g->lock();
        for (size_t i = 0; i < g->results.size(); ++i) {
          if (!g->answered[i]) continue;
          ++answered;
          const WorkerSessions& s = g->results[i];
          total += s.total;
          for (const auto& [k, n] : s.by_state)
            by_state[k] += n;
          for (const auto& [k, n] : s.by_listener)
            by_listener[k] += n;
          for (const auto& row : s.rows) {
            if (rows.size() >= limit) break;
            rows.push_back({{"worker", i},
                            {"listener", row.listener},
                            {"protocol", row.protocol},
                            {"state", row.state},
                            {"client", row.peer.to_string()},
                            {"age_ms", row.age_ms},
                            {"streams", row.streams}});
          }
        }
      }
      r["workers_answered"] = answered;
      r["total"] = total;
      json bs = json::array();
      for (const auto& [k, n] : by_state)
        bs.push_back({{"protocol", k.first}, {"state", k.second}, {"sessions", n}});
      r["by_state"] = std::move(bs);
      json bl = json::array();
      for (const auto& [k, n] : by_listener)
        bl.push_back({{"listener", k}, {"sessions", n}});
      r["by_listener"] = std::move(bl);
      if (cmd.verbose) {
        r["truncated"] = total > rows.size();
        r["sessions"] = std::move(rows);
      }
      return dump(r);
    }

    case AdminCommand::Kind::kSetEndpointState:
    case AdminCommand::Kind::kSetEndpointWeight:
    case AdminCommand::Kind::kSetEndpointMaxconn: {
      const upstream::Cluster* c = find_cluster(cmd.cluster);
      if (!c)
        return dump(
            error(fmt::format("no cluster '{}' (clusters: {})", cmd.cluster, cluster_names())));
      const auto parsed = SocketAddress::parse(cmd.address);
      int found = -1;
      std::vector<std::string> addrs;
      for (size_t i = 0; i < c->size(); ++i) {
        const auto& ec = c->endpoint_config(i);
        addrs.push_back(ec.address_text);
        if (ec.address_text == cmd.address || (parsed && ec.address == *parsed))
          found = static_cast<int>(i);
      }
      if (found < 0)
        return dump(error(fmt::format("cluster '{}' has no endpoint '{}' (endpoints: {})",
                                      cmd.cluster, cmd.address, names(addrs))));
      const size_t i = static_cast<size_t>(found);
      upstream::EndpointState& ep = c->endpoint(i);
      const config::EndpointConfig& ec = c->endpoint_config(i);
      json before = endpoint_json(*c, i, now_ms);
      bool wake = false;
      if (cmd.kind == AdminCommand::Kind::kSetEndpointState) {
        wake = cmd.state == upstream::AdminState::kReady;
        ep.set_admin_state(cmd.state);
        EGW_LOG(warn, "admin: endpoint {} set {} (was {})", ep.label(),
                upstream::to_string(cmd.state), before["state"].get<std::string>());
      } else if (cmd.kind == AdminCommand::Kind::kSetEndpointWeight) {
        ep.set_admin_weight(cmd.value);
        EGW_LOG(warn, "admin: endpoint {} weight {} ({})", ep.label(), ep.weight(ec),
                cmd.value ? "set by admin" : "the file's");
        wake = true;
      } else {
        ep.set_admin_maxconn(cmd.value);
        EGW_LOG(warn, "admin: endpoint {} maxconn {} ({})", ep.label(), ep.maxconn(ec),
                cmd.value ? "set by admin" : "the file's");
        wake = true;
      }
      if (wake) {
        for (const auto& w : workers_) {
          Worker* raw = w.get();
          auto name = std::make_shared<const std::string>(c->name());
          raw->post([raw, name] { raw->wake_waiters(*name); });
        }
      }
      r["endpoint"] = endpoint_json(*c, i, now_ms);
      r["was"] = {
          {"state", before["state"]}, {"weight", before["weight"]}, {"maxconn", before["maxconn"]}};
      return dump(r);
    }

    case AdminCommand::Kind::kSetClusterMaxconn: {
      const upstream::Cluster* c = find_cluster(cmd.cluster);
      if (!c)
        return dump(
            error(fmt::format("no cluster '{}' (clusters: {})", cmd.cluster, cluster_names())));
      json eps = json::array();
      for (size_t i = 0; i < c->size(); ++i) {
        c->endpoint(i).set_admin_maxconn(cmd.value);
        eps.push_back(endpoint_json(*c, i, now_ms));
      }
      EGW_LOG(warn, "admin: cluster {}: maxconn {} on its {} endpoints", c->name(),
              cmd.value ? std::to_string(*cmd.value) : std::string("from the file"), c->size());
      for (const auto& w : workers_) {
        Worker* raw = w.get();
        auto name = std::make_shared<const std::string>(c->name());
        raw->post([raw, name] { raw->wake_waiters(*name); });
      }
      r["endpoints"] = std::move(eps);
      return dump(r);
    }

    case AdminCommand::Kind::kReopenLogs:
      return admin_reopen_logs();

    case AdminCommand::Kind::kReload: {
      struct Wait {
        std::mutex mu;
        std::condition_variable cv;
        bool done = false, ran = false, ok = false;
        std::vector<std::string> errors;
        uint64_t generation = 0;
      };
      auto w = std::make_shared<Wait>();
      post_control([this, w](bool run) {
        bool ok = false;
        std::vector<std::string> errors;
        if (run && !draining_.load()) ok = reload("admin", &errors);
        std::lock_guard<std::mutex> lock(w->mu);
        w->ran = run && !draining_.load();
        w->ok = ok;
        w->errors = std::move(errors);
        w->generation = generation_;
        w->done = true;
        w->cv.notify_all();
      });
      std::unique_lock<std::mutex> lock(w->mu);
      if (!w->cv.wait_for(lock, kReloadWait, [&] { return w->done; }))
        return dump(error("the reload did not finish within 60 s (see the log)"));
      if (!w->ran) return dump(error("shutting down: no reload"));
      if (!w->ok) {
        json e = error(fmt::format("invalid configuration: keeping generation {}", w->generation));
        e["errors"] = w->errors;
        return dump(e);
      }
      r["generation"] = w->generation;
      return dump(r);
    }

    case AdminCommand::Kind::kUpgrade: {
      struct Wait {
        std::mutex mu;
        std::condition_variable cv;
        bool done = false;
        std::string reply;
      };
      auto w = std::make_shared<Wait>();
      auto finish = [w](std::string reply) {
        std::lock_guard<std::mutex> lock(w->mu);
        w->reply = std::move(reply);
        w->done = true;
        w->cv.notify_all();
      };
      std::string refused = dump(error("shutting down: no upgrade"));
      post_control([this, finish, refused](bool run) {
        if (!run) {
          finish(refused);
          return;
        }
        start_upgrade(finish);
      });
      std::unique_lock<std::mutex> lock(w->mu);
      // The control thread answers within kUpgradeReadyTimeoutMs.
      const auto limit = std::chrono::milliseconds(kUpgradeReadyTimeoutMs) + kWorkerWait * 5;
      if (!w->cv.wait_for(lock, limit, [&] { return w->done; }))
        return dump(error("the upgrade did not finish in time (see the log)"));
      return w->reply;
    }
  }
  return dump(error("unhandled command"));
}

std::string Server::admin_reopen_logs() {
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false, ran = false;
    std::vector<std::string> reopened, errors;
  };
  auto w = std::make_shared<Wait>();
  post_control([this, w](bool run) {
    std::vector<std::string> errors, reopened;
    if (run) reopened = reopen_logs(errors);
    std::lock_guard<std::mutex> lock(w->mu);
    w->ran = run;
    w->reopened = std::move(reopened);
    w->errors = std::move(errors);
    w->done = true;
    w->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(w->mu);
  json r;
  if (!w->cv.wait_for(lock, kReloadWait, [&] { return w->done; })) {
    r = error("reopening the logs did not finish within 60 s");
  } else if (!w->ran) {
    r = error("shutting down");
  } else if (!w->errors.empty()) {
    r = error(fmt::format("{} access log(s) could not be reopened (the old files stay in use)",
                          w->errors.size()));
    r["errors"] = w->errors;
    r["reopened"] = w->reopened;
  } else {
    r["ok"] = true;
    r["command"] = "reopen logs";
    r["reopened"] = w->reopened;
  }
  return r.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace egw::server
