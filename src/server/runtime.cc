#include "src/server/runtime.h"

#include <fmt/format.h>

#include "egw/log.h"

#include "uring/net.h"

namespace egw::server {

int Runtime::cluster_index(std::string_view name) const {
  for (size_t i = 0; i < config->clusters.size(); ++i) {
    if (config->clusters[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

namespace {

std::shared_ptr<upstream::EndpointState> find_endpoint(const Runtime* previous,
                                                       const std::string& cluster,
                                                       const SocketAddress& addr) {
  if (!previous) return nullptr;
  for (const auto& c : previous->clusters) {
    if (c->name() != cluster) continue;
    for (size_t i = 0; i < c->size(); ++i) {
      if (c->endpoint(i).address() == addr) return c->endpoint_ptr(i);
    }
  }
  return nullptr;
}

// An access log file this runtime or the previous one has open already.
std::shared_ptr<accesslog::File> find_log(const Runtime* previous, const Runtime& rt,
                                          const std::string& path) {
  for (const Runtime* r : {&rt, previous}) {
    if (!r) continue;
    for (const auto& f : r->access_logs)
      if (f && f->path() == path) return f;
  }
  return nullptr;
}

std::shared_ptr<BindSockets> find_bind(const Runtime* previous, const SocketAddress& addr) {
  if (!previous) return nullptr;
  for (const auto& l : previous->binds) {
    for (const auto& b : l) {
      if (b->address == addr && addr.port() != 0) return b;
    }
  }
  return nullptr;
}

// Takes the sockets the old process handed over for this bind (a binary
// upgrade), one per worker: the same kernel sockets, so their accept queues
// carry over. Ones beyond the worker count are closed (connections queued
// on them are reset: the count changed with the upgrade).
void adopt_sockets(Inheritance& inherited, const config::ListenerConfig& lc,
                   const config::BindConfig& bc, unsigned workers, BindSockets& bs,
                   SocketAddress& addr) {
  std::vector<UniqueFd> handed = inherited.take_listener(lc.name, bc.text);
  if (handed.empty()) return;
  auto local = SocketAddress::local_of(handed[0].get());
  if (!local || (bc.address.port() != 0 && !(*local == bc.address))) {
    EGW_LOG(warn, "listener '{}' {}: the handed-over socket is bound elsewhere; binding anew",
            lc.name, bc.text);
    return;
  }
  addr = *local;
  bs.address = addr;
  if (handed.size() > workers) {
    EGW_LOG(warn,
            "listener '{}' {}: {} sockets handed over for {} workers; the other {} are closed "
            "(connections queued on them are reset)",
            lc.name, bc.text, handed.size(), workers, handed.size() - workers);
    handed.resize(workers);
  }
  for (auto& fd : handed)
    bs.fds.push_back(std::move(fd));
}

std::shared_ptr<tls::ClientContext> make_client_tls(const config::Config& cfg,
                                                    const config::ClusterConfig& cc,
                                                    std::vector<config::ConfigError>& errors) {
  if (!cc.tls) return nullptr;
  tls::ClientOptions o;
  o.ca_file = cc.tls->ca_file;
  o.verify = cc.tls->verify;
  o.sni = cc.tls->sni;
  o.alpn = cc.tls->alpn;
  o.min_version = cc.tls->min_version;
  o.certificate = tls::CertificateFiles{cc.tls->cert, cc.tls->key};
  std::string detail;
  auto ctx = tls::ClientContext::create(o, &detail);
  if (!ctx) {
    errors.push_back(
        config::ConfigError{cfg.path, cc.tls->loc,
                            fmt::format("cluster '{}' tls: {}", cc.name,
                                        detail.empty() ? ctx.error().message() : detail)});
    return nullptr;
  }
  return std::move(*ctx);
}

std::shared_ptr<tls::ServerContext> make_server_tls(const config::Config& cfg,
                                                    const config::ListenerConfig& lc,
                                                    std::shared_ptr<tls::TicketKeys> tickets,
                                                    std::vector<config::ConfigError>& errors) {
  if (!lc.tls) return nullptr;
  tls::ServerOptions o;
  for (const auto& c : lc.tls->certificates)
    o.certificates.push_back({c.cert, c.key});
  o.min_version = lc.tls->min_version;
  o.max_version = lc.tls->max_version;
  o.cipher_list = lc.tls->ciphers;
  o.groups = lc.tls->groups;
  o.alpn = lc.tls->alpn;
  if (o.alpn.empty() && lc.protocol == config::Protocol::kHttp) {
    o.alpn = lc.http.http2 ? std::vector<std::string>{"h2", "http/1.1"}
                           : std::vector<std::string>{"http/1.1"};
  }
  o.client_ca_file = lc.tls->client_ca;
  o.require_client_cert = lc.tls->require_client_cert;
  o.session_tickets = lc.tls->session_tickets;
  o.ticket_lifetime_s = lc.tls->ticket_lifetime_s;
  o.handshake_timeout_ms = lc.tls->handshake_timeout_ms;
  std::string detail;
  auto ctx = tls::ServerContext::create(o, std::move(tickets), &detail);
  if (!ctx) {
    errors.push_back(
        config::ConfigError{cfg.path, lc.tls->loc,
                            fmt::format("listener '{}' tls: {}", lc.name,
                                        detail.empty() ? ctx.error().message() : detail)});
    return nullptr;
  }
  return std::move(*ctx);
}

}  // namespace

std::vector<config::ConfigError> check_tls(const config::Config& cfg) {
  std::vector<config::ConfigError> errors;
  auto tickets = std::make_shared<tls::TicketKeys>();
  for (const auto& cc : cfg.clusters)
    make_client_tls(cfg, cc, errors);
  for (const auto& lc : cfg.listeners)
    make_server_tls(cfg, lc, tickets, errors);
  return errors;
}

BuildResult build_runtime(config::ConfigPtr cfg, const Runtime* previous, unsigned workers,
                          uint64_t generation, std::shared_ptr<tls::TicketKeys> tickets,
                          Inheritance* inherited) {
  BuildResult out;
  auto rt = std::make_shared<Runtime>();
  rt->config = cfg;
  rt->generation = generation;
  rt->workers = workers;
  // Endpoints carried over, with their new entries in the file.
  std::vector<std::pair<upstream::EndpointState*, const config::EndpointConfig*>> carried;
  for (const auto& cc : cfg->clusters) {
    std::vector<std::shared_ptr<upstream::EndpointState>> eps;
    for (const auto& ec : cc.endpoints) {
      auto ep = find_endpoint(previous, cc.name, ec.address);
      if (ep) {
        carried.emplace_back(ep.get(), &ec);
      } else {
        ep = std::make_shared<upstream::EndpointState>(cc.name, ec);
      }
      eps.push_back(std::move(ep));
    }
    rt->clusters.push_back(std::make_shared<upstream::Cluster>(cc, std::move(eps), workers));
    rt->cluster_tls.push_back(make_client_tls(*cfg, cc, out.errors));
  }
  for (const auto& lc : cfg->listeners) {
    ListenerRuntime& lr = rt->listeners.emplace_back();
    lr.default_cluster = rt->cluster_index(lc.cluster);
    for (const auto& r : lc.routes) {
      lr.route_clusters.push_back(rt->cluster_index(r.cluster));
    }
    if (lc.proxy_protocol) {
      for (const std::string& c : lc.proxy_protocol->trusted) {
        if (auto cidr = route::Cidr::parse(c)) lr.proxy_trusted.push_back(*cidr);
      }
    }
    auto sends = [&](int ci) {
      return ci >= 0 && cfg->clusters[static_cast<size_t>(ci)].send_proxy !=
                            config::ClusterConfig::SendProxy::kOff;
    };
    lr.sends_proxy = sends(lr.default_cluster);
    for (const int ci : lr.route_clusters)
      lr.sends_proxy = lr.sends_proxy || sends(ci);
    rt->listener_tls.push_back(make_server_tls(*cfg, lc, tickets, out.errors));
    std::shared_ptr<accesslog::File> log;
    std::shared_ptr<accesslog::Format> format;
    if (const auto& al = lc.access_log) {
      log = find_log(previous, *rt, al->path);
      std::string why;
      if (!log) log = accesslog::File::open(al->path, why);
      if (!log) {
        out.errors.push_back(config::ConfigError{cfg->path, al->loc,
                                                 fmt::format("listener '{}': {}", lc.name, why)});
      }
      format = std::make_shared<accesslog::Format>();
      if (!accesslog::Format::compile(al->format, *format, why)) format.reset();  // the loader said
    }
    rt->access_logs.push_back(std::move(log));
    rt->access_formats.push_back(std::move(format));
    auto& binds = rt->binds.emplace_back();
    for (const auto& bc : lc.binds) {
      if (auto kept = find_bind(previous, bc.address)) {
        binds.push_back(std::move(kept));
        continue;
      }
      auto bs = std::make_shared<BindSockets>();
      bs->address = bc.address;
      bs->text = bc.text;
      // Port 0 asks the kernel for a port: the first socket gets one and the
      // other workers' sockets join it there.
      SocketAddress addr = bc.address;
      if (inherited) adopt_sockets(*inherited, lc, bc, workers, *bs, addr);
      for (unsigned w = static_cast<unsigned>(bs->fds.size()); w < workers; ++w) {
        auto fd = uring::listen_tcp(addr, uring::ListenOptions{});
        if (!fd) {
          out.errors.push_back(
              config::ConfigError{cfg->path, bc.loc,
                                  fmt::format("listener '{}': cannot listen on {}: {}", lc.name,
                                              bc.text, fd.error().message())});
          break;
        }
        if (w == 0 && addr.port() == 0) {
          if (auto local = SocketAddress::local_of(fd->get())) {
            addr = *local;
            bs->address = addr;
          }
        }
        bs->fds.push_back(std::move(*fd));
      }
      binds.push_back(std::move(bs));
    }
  }
  if (!out.errors.empty()) return out;
  for (auto [ep, ec] : carried) {
    // What an operator set stays, unless the file changed that value too.
    if (const std::string dropped = ep->reconfigured(*ec); !dropped.empty()) {
      EGW_LOG(info, "endpoint {}: the file changed its {}: the admin setting gives way",
              ep->label(), dropped);
    }
  }
  out.runtime = std::move(rt);
  return out;
}

}  // namespace egw::server
