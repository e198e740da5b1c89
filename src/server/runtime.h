// Runtime: everything a configuration snapshot needs at run time, built by
// the control thread and shared, read-only, by every worker: the Config, one
// upstream::Cluster per configured cluster (endpoint states carried over from
// the previous runtime where the cluster name and address stay), and the
// listening sockets (one SO_REUSEPORT socket per worker per bind address,
// carried over where the address stays, so a reload never closes a listener
// that remains).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "egw/address.h"
#include "egw/unique_fd.h"
#include "src/accesslog/format.h"
#include "src/accesslog/writer.h"
#include "src/config/config.h"
#include "src/config/loader.h"
#include "src/route/cidr.h"
#include "src/server/upgrade.h"
#include "src/tls/context.h"
#include "src/tls/ticket_keys.h"
#include "src/upstream/cluster.h"

namespace egw::server {

// The listening sockets of one bind address: fds[w] belongs to worker w.
struct BindSockets {
  SocketAddress address;
  std::string text;
  std::vector<UniqueFd> fds;
};

// What an HTTP listener needs beyond its config: the cluster index of each
// route (-1 for `respond` routes) and of the default. (The compiled Router is
// per worker: RE2 takes a lock per match, so sharing one would make workers
// contend.)
struct ListenerRuntime {
  std::vector<int> route_clusters;
  int default_cluster = -1;
  // proxy_protocol: the sources whose headers are believed.
  std::vector<route::Cidr> proxy_trusted;
  // Some cluster of the listener sends PROXY headers (an L4 session then
  // reads its own address at start, before the socket moves on).
  bool sends_proxy = false;
};

struct Runtime {
  config::ConfigPtr config;
  std::vector<std::shared_ptr<upstream::Cluster>> clusters;  // parallel to config->clusters
  // binds[l][b]: listener l's bind b (parallel to config->listeners[l].binds).
  std::vector<std::vector<std::shared_ptr<BindSockets>>> binds;
  std::vector<ListenerRuntime> listeners;  // parallel to config->listeners
  // TLS contexts (null where the config has no tls table), shared read-only
  // by every worker.
  std::vector<std::shared_ptr<tls::ServerContext>> listener_tls;  // parallel to listeners
  std::vector<std::shared_ptr<tls::ClientContext>> cluster_tls;   // parallel to clusters
  // Access logs (null where a listener has none): the files, shared by path
  // and carried over reloads that keep the path, and the compiled formats.
  std::vector<std::shared_ptr<accesslog::File>> access_logs;             // parallel to listeners
  std::vector<std::shared_ptr<const accesslog::Format>> access_formats;  // parallel to listeners
  uint64_t generation = 0;
  unsigned workers = 0;

  // Index of the cluster named `name`, or -1.
  int cluster_index(std::string_view name) const;
};

using RuntimePtr = std::shared_ptr<const Runtime>;

// Builds the runtime for `cfg` with `workers` workers, reusing what
// `previous` (may be null) already has. Fails with located errors, e.g. a
// port already in use; then nothing new is left open.
struct BuildResult {
  RuntimePtr runtime;
  std::vector<config::ConfigError> errors;
};
// `tickets` are the session-ticket keys every TLS listener shares (they
// outlive reloads, so tickets survive them).
// `inherited` (a binary upgrade's new process, at start-up): listening
// sockets the old process handed over, taken by listener name and bind text
// before anything is bound anew.
BuildResult build_runtime(config::ConfigPtr cfg, const Runtime* previous, unsigned workers,
                          uint64_t generation, std::shared_ptr<tls::TicketKeys> tickets,
                          Inheritance* inherited = nullptr);

// Loads every TLS certificate, key and CA the configuration names, as
// build_runtime() would, without binding anything (--check).
std::vector<config::ConfigError> check_tls(const config::Config& cfg);

}  // namespace egw::server
