// expressgateway ctl's rendering of replies for people: scalars aligned,
// objects nested, arrays of objects as tables (flat members as columns),
// rows with rows of their own as sub-tables, errors with their details.
#include <gtest/gtest.h>

#include "src/ctl/ctl.h"

namespace egw::ctl {
namespace {

using json = nlohmann::ordered_json;

TEST(CtlRender, ScalarsAndNestedObjects) {
  const json j = json::parse(
      R"({"ok":true,"command":"show info","version":"0.1.0","workers":2,"draining":false,
          "metrics":null,"kernel":{"release":"6.1","io_uring":{"send_zc":true}}})");
  EXPECT_EQ(render(j),
            "version:   0.1.0\n"
            "workers:   2\n"
            "draining:  no\n"
            "metrics:   -\n"
            "kernel:\n"
            "  release:  6.1\n"
            "  io_uring:\n"
            "    send_zc:  yes\n");
}

TEST(CtlRender, TablesFlattenOneLevel) {
  const json j = json::parse(R"({"ok":true,"listeners":[
      {"name":"web","sessions":12,"responses":{"2xx":10,"5xx":2},"by":{"h2":{"2xx":1}}},
      {"name":"api-long","sessions":3,"responses":{"2xx":3,"5xx":0},"by":{"h2":{"2xx":0}}}]})");
  EXPECT_EQ(render(j),
            "listeners:\n"
            "  name      sessions  2xx  5xx\n"
            "  web             12   10    2\n"
            "  api-long         3    3    0\n");
}

TEST(CtlRender, AmbiguousMembersKeepTheirFullName) {
  const json j = json::parse(R"({"ok":true,"rows":[{"count":1,"a":{"count":2},"b":{"count":3}}]})");
  EXPECT_EQ(render(j),
            "rows:\n"
            "  count  a.count  b.count\n"
            "      1        2        3\n");
}

TEST(CtlRender, RowsWithRowsBecomeSubTables) {
  const json j = json::parse(R"({"ok":true,"clusters":[{"name":"app","phases":[
      {"phase":"connect","p50_us":40},{"phase":"total","p50_us":900}]}]})");
  EXPECT_EQ(render(j),
            "clusters app:\n"
            "  phase    p50_us\n"
            "  connect      40\n"
            "  total       900\n");
}

TEST(CtlRender, ErrorsWithDetails) {
  const json j = json::parse(
      R"({"ok":false,"error":"invalid configuration","errors":["a.toml:3:1: bad","a.toml:4:2: worse"]})");
  EXPECT_EQ(render(j), "error: invalid configuration\n  a.toml:3:1: bad\n  a.toml:4:2: worse\n");
  EXPECT_EQ(render(json::parse(R"({"ok":false})")), "error: (no message)\n");
}

TEST(CtlRender, ShortAndLongLists) {
  EXPECT_EQ(render(json::parse(R"({"ok":true,"bind":["a","b"]})")), "bind:  a, b\n");
  EXPECT_EQ(render(json::parse(R"({"ok":true,"commands":["a","b","c","d","e"]})")),
            "commands:\n  a\n  b\n  c\n  d\n  e\n");
  EXPECT_EQ(render(json::parse(R"({"ok":true,"command":"x"})")), "ok\n");
}

}  // namespace
}  // namespace egw::ctl
