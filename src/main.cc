// expressgateway: command line entry point.
//
//   expressgateway [-c FILE]            run (default config/expressgateway.toml)
//   expressgateway --check [-c FILE]    validate and exit: 0 valid, 2 invalid
//   expressgateway --workers N          override [global] workers
//   expressgateway --log-level LEVEL    override [global] log_level
//   expressgateway --print-example      print the example configuration
//   expressgateway --probe              print the kernel feature report
//   expressgateway --version
//   expressgateway ctl [--socket PATH] [--json] COMMAND...   the admin API (src/ctl/ctl.h)
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>

#include "src/ctl/ctl.h"

#include "src/config/loader.h"
#include "src/server/server.h"
#include "uring/probe.h"

int main(int argc, char** argv) {
  using namespace egw;
  if (argc >= 2 && std::strcmp(argv[1], "ctl") == 0) return ctl::main(argc - 1, argv + 1);
  CLI::App app{"ExpressGateway: an io_uring-native L4/L7 reverse proxy and load balancer"};
  server::Options options;
  bool check = false, version = false, example = false, probe = false;
  unsigned workers = 0;
  std::string level;
  app.add_option("-c,--config", options.config_path, "configuration file")->capture_default_str();
  app.add_flag("--check", check, "validate the configuration and exit (0 valid, 2 invalid)");
  app.add_flag("--version", version, "print the version and exit");
  app.add_flag("--print-example", example, "print the example configuration and exit");
  app.add_flag("--probe", probe, "print what this kernel's io_uring offers and exit");
  app.add_option("--workers", workers, "worker threads (overrides [global] workers)")
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--log-level", level, "trace | debug | info | warn | error | off");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : server::kExitInvalidConfig;
  }
  if (version) {
    std::printf("expressgateway %s\n", EGW_VERSION);
    return 0;
  }
  if (example) {
    std::fputs(config::example_config().c_str(), stdout);
    return 0;
  }
  if (probe) {
    std::puts(uring::features().report().c_str());
    return uring::features().available ? 0 : 1;
  }
  if (!level.empty()) {
    auto l = log::parse_level(level);
    if (!l) {
      std::fprintf(stderr, "--log-level: '%s' is not one of trace, debug, info, warn, error, off\n",
                   level.c_str());
      return server::kExitInvalidConfig;
    }
    options.log_level = *l;
  }
  if (workers) options.workers = workers;
  if (check) {
    auto r = config::load_file(options.config_path);
    if (r.errors.empty()) r.errors = server::check_tls(*r.config);
    if (!r.errors.empty()) {
      server::print_errors(r.errors);
      return server::kExitInvalidConfig;
    }
    std::printf("%s: configuration ok (%zu listeners, %zu clusters)\n", options.config_path.c_str(),
                r.config->listeners.size(), r.config->clusters.size());
    return 0;
  }
  options.argv.assign(argv, argv + argc);  // `ctl upgrade` runs the same command line again
  server::Server srv(std::move(options));
  return srv.run();
}
