#include "src/load/report.h"

#include <fmt/format.h>

#include <iterator>

namespace egw::load {
namespace {

// "812 us", "12.345 ms", "1.250 s".
std::string human_us(uint64_t us) {
  if (us < 1000) return fmt::format("{} us", us);
  if (us < 1'000'000) return fmt::format("{:.3f} ms", static_cast<double>(us) / 1e3);
  return fmt::format("{:.3f} s", static_cast<double>(us) / 1e6);
}

std::string human_bytes(uint64_t b) {
  if (b < 10'000) return fmt::format("{} B", b);
  if (b < 10'000'000) return fmt::format("{:.1f} kB", static_cast<double>(b) / 1e3);
  if (b < 10'000'000'000) return fmt::format("{:.1f} MB", static_cast<double>(b) / 1e6);
  return fmt::format("{:.1f} GB", static_cast<double>(b) / 1e9);
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

void phase_row(std::string& out, const char* name, const Histogram& h) {
  auto it = std::back_inserter(out);
  if (h.count() == 0) {
    fmt::format_to(it, "  {:<8} {:>11} {:>11} {:>11} {:>11} {:>11} {:>10}\n", name, "-", "-", "-",
                   "-", "-", 0);
    return;
  }
  fmt::format_to(it, "  {:<8} {:>11} {:>11} {:>11} {:>11} {:>11} {:>10}\n", name,
                 human_us(h.value_at_percentile(50)), human_us(h.value_at_percentile(90)),
                 human_us(h.value_at_percentile(99)), human_us(h.value_at_percentile(99.9)),
                 human_us(h.max()), h.count());
}

std::string describe_mode(const Options& o, double rate) {
  const std::string h2 = fmt::format("HTTP/2 connections ({} streams each):", o.streams);
  const char* conn = o.h2                           ? h2.c_str()
                     : o.new_connection_per_request ? "a new connection per request, at most"
                                                    : "keep-alive connections:";
  const std::string threads = fmt::format("{} thread{}", o.threads, o.threads == 1 ? "" : "s");
  if (!o.open_loop()) {
    return fmt::format("closed loop; {} {} on {}", conn, o.connections, threads);
  }
  return fmt::format("open loop, {} arrivals at {:.0f} req/s; {} {} on {}", to_string(o.arrival),
                     rate, conn, o.connections, threads);
}

}  // namespace

std::string format_report(const Options& o, const RunResult& r) {
  const Stats& st = r.stats;
  std::string out;
  auto it = std::back_inserter(out);
  fmt::format_to(it, "expressgateway-load: {} {}\n", o.method, o.target.url);
  fmt::format_to(it, "  {}\n", describe_mode(o, r.target_rate));
  fmt::format_to(it, "  {:.3f} s measured", static_cast<double>(o.duration_ns) / 1e9);
  if (o.warmup_ns)
    fmt::format_to(it, " after {:.3f} s of warm-up", static_cast<double>(o.warmup_ns) / 1e9);
  fmt::format_to(it, "; request timeout {} ms\n\n", o.timeout_ms);

  if (o.open_loop()) {
    fmt::format_to(it,
                   "Latency from each request's intended send time (coordinated omission "
                   "corrected), {} responses:\n",
                   st.requests);
  } else {
    fmt::format_to(it,
                   "Latency from each request's actual send time (closed loop: no coordinated "
                   "omission correction), {} responses:\n",
                   st.requests);
  }
  out += st.total.percentile_table();
  fmt::format_to(it, "\n  {:<8} {:>11} {:>11} {:>11} {:>11} {:>11} {:>10}\n", "phase", "p50", "p90",
                 "p99", "p99.9", "max", "count");
  phase_row(out, "connect", st.connect);
  if (o.target.tls) phase_row(out, "tls", st.tls_handshake);
  phase_row(out, "wait", st.wait);
  phase_row(out, "ttfb", st.ttfb);
  phase_row(out, "total", st.total);
  if (o.open_loop()) phase_row(out, "lag", st.lag);

  fmt::format_to(it, "\nThroughput: {:.1f} req/s", r.achieved_rate);
  if (o.open_loop()) fmt::format_to(it, " achieved of {:.0f} req/s target", r.target_rate);
  fmt::format_to(it, " ({} responses in {:.3f} s, {} received)\n", st.requests, r.elapsed_s,
                 human_bytes(st.bytes_received));
  out += "Status:";
  bool any = false;
  for (size_t c = 1; c < st.status_classes.size(); ++c) {
    if (st.status_classes[c] == 0) continue;
    fmt::format_to(it, " {}xx {}", c, st.status_classes[c]);
    any = true;
  }
  out += any ? "\n" : " none\n";
  const uint64_t errors = st.error_total();
  if (errors == 0) {
    out += "Errors: none\n";
  } else {
    fmt::format_to(it, "Errors: {} (", errors);
    bool first = true;
    for (size_t k = 0; k < kErrorKinds; ++k) {
      if (st.errors[k] == 0) continue;
      fmt::format_to(it, "{}{} {}", first ? "" : ", ", to_string(static_cast<ErrorKind>(k)),
                     st.errors[k]);
      first = false;
    }
    out += ")\n";
  }
  for (const std::string& w : r.warnings)
    fmt::format_to(it, "warning: {}\n", w);
  return out;
}

std::string format_sweep_step(const Objective& obj, const SweepStep& s, size_t index) {
  return fmt::format(
      "sweep step {}: target {:.0f} req/s, achieved {:.1f} req/s, {} {}, errors {}: {}\n",
      index + 1, s.target_rate, s.achieved_rate, obj.label, human_us(s.value_us), s.errors,
      s.met ? "met" : "violated");
}

std::string format_sweep_summary(const SweepResult& s) {
  if (!s.best) {
    return fmt::format("sweep: no rate met {} in {} steps\n", s.objective.text, s.steps.size());
  }
  const SweepStep& b = s.steps[*s.best];
  return fmt::format(
      "sweep: highest rate meeting {}: {:.0f} req/s (achieved {:.1f} req/s, {} {}) after {} "
      "steps\n",
      s.objective.text, b.target_rate, b.achieved_rate, s.objective.label, human_us(b.value_us),
      s.steps.size());
}

std::string format_json(const Options& o, const RunResult& r, const SweepResult* sweep) {
  const Stats& st = r.stats;
  std::string out = "{";
  auto it = std::back_inserter(out);
  fmt::format_to(it, "\"url\":{},\"method\":{},", json_string(o.target.url), json_string(o.method));
  fmt::format_to(it, "\"mode\":\"{}\",\"arrival\":\"{}\",",
                 o.open_loop() ? "open-loop" : "closed-loop", to_string(o.arrival));
  fmt::format_to(it, "\"connections\":{},\"threads\":{},\"new_connection_per_request\":{},",
                 o.connections, o.threads, o.new_connection_per_request);
  fmt::format_to(it, "\"protocol\":\"{}\",\"streams_per_connection\":{},", o.h2 ? "h2" : "http/1.1",
                 o.h2 ? o.streams : 1);
  fmt::format_to(it, "\"duration_s\":{:.3f},\"warmup_s\":{:.3f},\"timeout_ms\":{},",
                 static_cast<double>(o.duration_ns) / 1e9, static_cast<double>(o.warmup_ns) / 1e9,
                 o.timeout_ms);
  fmt::format_to(it, "\"target_rate\":{:.3f},\"achieved_rate\":{:.3f},\"elapsed_s\":{:.6f},",
                 r.target_rate, r.achieved_rate, r.elapsed_s);
  fmt::format_to(it, "\"requests\":{},\"sent\":{},\"errors\":{},\"bytes_received\":{},",
                 st.requests, st.sent, st.error_total(), st.bytes_received);
  out += "\"status\":{";
  for (size_t c = 1; c < st.status_classes.size(); ++c)
    fmt::format_to(it, "{}\"{}xx\":{}", c == 1 ? "" : ",", c, st.status_classes[c]);
  out += "},\"error_kinds\":{";
  for (size_t k = 0; k < kErrorKinds; ++k)
    fmt::format_to(it, "{}\"{}\":{}", k == 0 ? "" : ",", to_string(static_cast<ErrorKind>(k)),
                   st.errors[k]);
  fmt::format_to(it, "}},\"latency_us\":{},", st.total.to_json());
  fmt::format_to(it,
                 "\"phases_us\":{{\"connect\":{},\"tls_handshake\":{},\"wait\":{},"
                 "\"ttfb\":{},\"total\":{},\"generator_lag\":{}}},\"tls_resumed\":{},",
                 st.connect.to_json(), st.tls_handshake.to_json(), st.wait.to_json(),
                 st.ttfb.to_json(), st.total.to_json(), st.lag.to_json(), st.tls_resumed);
  fmt::format_to(it, "\"setup_failures\":{},\"interrupted\":{},\"warnings\":[", st.setup_failures,
                 r.interrupted);
  for (size_t i = 0; i < r.warnings.size(); ++i)
    fmt::format_to(it, "{}{}", i ? "," : "", json_string(r.warnings[i]));
  out += "]";
  if (sweep) {
    fmt::format_to(it, ",\"sweep\":{{\"objective\":{},\"percentile\":{},\"limit_us\":{},",
                   json_string(sweep->objective.text), sweep->objective.percentile,
                   sweep->objective.limit_us);
    if (sweep->best) {
      const SweepStep& b = sweep->steps[*sweep->best];
      fmt::format_to(it, "\"best_rate\":{:.3f},\"best_achieved_rate\":{:.3f},\"best_value_us\":{},",
                     b.target_rate, b.achieved_rate, b.value_us);
    } else {
      out += "\"best_rate\":null,";
    }
    out += "\"steps\":[";
    for (size_t i = 0; i < sweep->steps.size(); ++i) {
      const SweepStep& s = sweep->steps[i];
      fmt::format_to(it,
                     "{}{{\"target_rate\":{:.3f},\"achieved_rate\":{:.3f},\"value_us\":{},"
                     "\"errors\":{},\"met\":{}}}",
                     i ? "," : "", s.target_rate, s.achieved_rate, s.value_us, s.errors, s.met);
    }
    out += "]}";
  }
  out += "}\n";
  return out;
}

std::string format_hdr(const RunResult& r) {
  std::string out;
  r.stats.total.write_hdr_percentile_distribution(out, 1000.0);
  return out;
}

}  // namespace egw::load
