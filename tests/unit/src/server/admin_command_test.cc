// The admin API's command parser: every command, its arguments, and the
// refusals (with what they say).
#include "src/server/admin_command.h"

#include <gtest/gtest.h>

namespace egw::server {
namespace {

using K = AdminCommand::Kind;

AdminCommand ok(std::string_view line) {
  auto c = parse_admin_command(line);
  EXPECT_TRUE(c.command.has_value()) << line << ": " << c.error;
  return c ? *c : AdminCommand{};
}

std::string bad(std::string_view line) {
  auto c = parse_admin_command(line);
  EXPECT_FALSE(c.command.has_value()) << line << " was taken";
  EXPECT_FALSE(c.error.empty());
  return c.error;
}

TEST(AdminCommand, ShowCommands) {
  EXPECT_EQ(ok("help").kind, K::kHelp);
  EXPECT_EQ(ok("show info").kind, K::kShowInfo);
  EXPECT_EQ(ok("  show\tstats  ").kind, K::kShowStats);
  EXPECT_EQ(ok("show stats\r").kind, K::kShowStats);
  auto e = ok("show endpoints");
  EXPECT_EQ(e.kind, K::kShowEndpoints);
  EXPECT_EQ(e.cluster, "");
  EXPECT_EQ(ok("show endpoints app").cluster, "app");
  auto l = ok("show latency");
  EXPECT_EQ(l.kind, K::kShowLatency);
  EXPECT_EQ(l.scope, "");
  l = ok("show latency cluster app");
  EXPECT_EQ(l.scope, "cluster");
  EXPECT_EQ(l.name, "app");
  EXPECT_EQ(ok("show latency listener web").scope, "listener");
  auto s = ok("show sessions");
  EXPECT_EQ(s.kind, K::kShowSessions);
  EXPECT_FALSE(s.verbose);
  s = ok("show sessions verbose");
  EXPECT_TRUE(s.verbose);
  EXPECT_EQ(s.limit, 100u);
  EXPECT_EQ(ok("show sessions verbose 7").limit, 7u);
  EXPECT_EQ(ok("reload").kind, K::kReload);
  EXPECT_EQ(ok("reopen logs").kind, K::kReopenLogs);
  EXPECT_EQ(ok("upgrade").kind, K::kUpgrade);
  EXPECT_EQ(ok("show   info").text, "show info");
}

TEST(AdminCommand, SetCommands) {
  auto c = ok("set endpoint app 127.0.0.1:8080 state drain");
  EXPECT_EQ(c.kind, K::kSetEndpointState);
  EXPECT_EQ(c.cluster, "app");
  EXPECT_EQ(c.address, "127.0.0.1:8080");
  EXPECT_EQ(c.state, upstream::AdminState::kDrain);
  EXPECT_EQ(ok("set endpoint app [::1]:80 state maint").state, upstream::AdminState::kMaint);
  EXPECT_EQ(ok("set endpoint app a:1 state ready").state, upstream::AdminState::kReady);
  c = ok("set endpoint app a:1 weight 7");
  EXPECT_EQ(c.kind, K::kSetEndpointWeight);
  EXPECT_EQ(c.value, std::optional<uint32_t>(7));
  EXPECT_EQ(ok("set endpoint app a:1 weight 0").value, std::optional<uint32_t>(0));
  EXPECT_EQ(ok("set endpoint app a:1 weight default").value, std::nullopt);
  c = ok("set endpoint app a:1 maxconn 10000000");
  EXPECT_EQ(c.kind, K::kSetEndpointMaxconn);
  EXPECT_EQ(c.value, std::optional<uint32_t>(kMaxAdminMaxconn));
  c = ok("set cluster app maxconn 5");
  EXPECT_EQ(c.kind, K::kSetClusterMaxconn);
  EXPECT_EQ(c.cluster, "app");
  EXPECT_EQ(c.value, std::optional<uint32_t>(5));
  EXPECT_EQ(ok("set cluster app maxconn default").value, std::nullopt);
}

TEST(AdminCommand, RefusalsSayWhat) {
  EXPECT_NE(bad("").find("empty command"), std::string::npos);
  EXPECT_NE(bad("   ").find("empty command"), std::string::npos);
  EXPECT_NE(bad("frobnicate").find("unknown command 'frobnicate'"), std::string::npos);
  EXPECT_NE(bad("frobnicate").find("show info"), std::string::npos) << "lists the commands";
  EXPECT_NE(bad("show").find("usage"), std::string::npos);
  EXPECT_NE(bad("show info now").find("usage: show info"), std::string::npos);
  EXPECT_NE(bad("show nothing").find("unknown command"), std::string::npos);
  EXPECT_NE(bad("show latency cluster").find("usage"), std::string::npos);
  EXPECT_NE(bad("show latency endpoint x").find("usage"), std::string::npos);
  EXPECT_NE(bad("show sessions verbose 0").find("from 1 to"), std::string::npos);
  EXPECT_NE(bad("show sessions verbose 10001").find("from 1 to"), std::string::npos);
  EXPECT_NE(bad("show sessions verbose x").find("not a number"), std::string::npos);
  EXPECT_NE(bad("set endpoint app a:1 state up").find("ready, drain, maint"), std::string::npos);
  EXPECT_NE(bad("set endpoint app a:1 weight 257").find("from 0 to 256"), std::string::npos);
  EXPECT_NE(bad("set endpoint app a:1 weight -1").find("not a number"), std::string::npos);
  EXPECT_NE(bad("set endpoint app a:1 weight 01").find("not a number"), std::string::npos);
  EXPECT_NE(bad("set endpoint app a:1 weight 4294967297").find("not a number"), std::string::npos);
  EXPECT_NE(bad("set endpoint app a:1 maxconn 10000001").find("not a number"), std::string::npos);
  EXPECT_NE(bad("set endpoint app a:1 colour red").find("usage"), std::string::npos);
  EXPECT_NE(bad("set endpoint app a:1 state").find("usage"), std::string::npos);
  EXPECT_NE(bad("set cluster app weight 1").find("usage"), std::string::npos);
  EXPECT_NE(bad("set").find("usage"), std::string::npos);
  EXPECT_NE(bad("reload now").find("usage: reload"), std::string::npos);
  EXPECT_NE(bad("help me").find("usage: help"), std::string::npos);
  EXPECT_NE(bad("reopen").find("usage: reopen logs"), std::string::npos);
  EXPECT_NE(bad("reopen files").find("usage: reopen logs"), std::string::npos);
  EXPECT_NE(bad("upgrade now").find("usage: upgrade"), std::string::npos);
}

TEST(AdminCommand, OnlyPrintableAscii) {
  EXPECT_NE(bad(std::string("show\0info", 9)).find("0x00 at column 5"), std::string::npos);
  EXPECT_NE(bad("show info\x1b[2J").find("0x1b"), std::string::npos);
  EXPECT_NE(bad("show \xc3\xa9").find("0xc3"), std::string::npos);
  EXPECT_NE(bad("show\ninfo").find("0x0a"), std::string::npos);
  EXPECT_NE(bad(std::string(kMaxAdminLine + 1, 'a')).find("longer than"), std::string::npos);
  // At the limit it is just an unknown command.
  EXPECT_NE(bad(std::string(kMaxAdminLine, 'a')).find("unknown command"), std::string::npos);
}

TEST(AdminCommand, UsageListsEveryCommand) {
  const std::string_view u = admin_usage();
  for (const char* c :
       {"help", "show info", "show stats", "show endpoints", "show latency", "show sessions",
        "set endpoint", "set cluster", "reload", "reopen logs", "upgrade"})
    EXPECT_NE(u.find(c), std::string_view::npos) << c;
}

}  // namespace
}  // namespace egw::server
