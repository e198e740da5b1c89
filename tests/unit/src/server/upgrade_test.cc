#include "src/server/upgrade.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace egw::server {
namespace {

struct Link {
  UniqueFd a, b;
  Link() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    a = UniqueFd(sv[0]);
    b = UniqueFd(sv[1]);
  }
};

ino_t inode(int fd) {
  struct stat st {};
  EXPECT_EQ(::fstat(fd, &st), 0);
  return st.st_ino;
}

UniqueFd a_socket() {
  return UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
}

TEST(Upgrade, HandsOverListenersAdminMetricsAndKeys) {
  Link link;
  std::vector<UniqueFd> web, api;
  for (int i = 0; i < 3; ++i)
    web.push_back(a_socket());
  // More than one message holds: sent in parts, received as one bind.
  for (size_t i = 0; i < kMaxFdsPerMessage + 20; ++i)
    api.push_back(UniqueFd(::dup(web[0].get())));
  UniqueFd admin = a_socket(), metrics = a_socket();
  Handover h;
  h.generation = 7;
  h.tickets = std::string("\x00\xff\x10", 3);
  Handover::Listener lw{"web", "127.0.0.1:8080", {}}, la{"api", "[::1]:0", {}};
  for (auto& fd : web)
    lw.fds.push_back(fd.get());
  for (auto& fd : api)
    la.fds.push_back(fd.get());
  h.listeners = {lw, la};
  h.admin_path = "/run/egw.sock";
  h.admin_fd = admin.get();
  h.metrics_bind = "127.0.0.1:9145";
  h.metrics_fd = metrics.get();
  std::string why;
  ASSERT_TRUE(send_handover(link.a.get(), h, why)) << why;

  auto in = Inheritance::receive(link.b.get(), why);
  ASSERT_TRUE(in) << why;
  EXPECT_EQ(in->generation(), 7u);
  EXPECT_EQ(in->predecessor(), ::getpid());
  EXPECT_EQ(in->tickets(), std::string("\x00\xff\x10", 3));
  EXPECT_EQ(in->left(), 3 + api.size() + 2);
  EXPECT_TRUE(in->take_listener("web", "127.0.0.1:8081").empty());  // another bind
  auto got = in->take_listener("web", "127.0.0.1:8080");
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(inode(got[i].get()), inode(web[i].get()));  // the same sockets, in order
  EXPECT_EQ(in->take_listener("api", "[::1]:0").size(), api.size());
  EXPECT_TRUE(in->take_listener("web", "127.0.0.1:8080").empty());  // taken once
  EXPECT_FALSE(in->take_admin("/run/other.sock"));
  UniqueFd a = in->take_admin("/run/egw.sock");
  ASSERT_TRUE(a);
  EXPECT_EQ(inode(a.get()), inode(admin.get()));
  UniqueFd m = in->take_metrics("127.0.0.1:9145");
  ASSERT_TRUE(m);
  EXPECT_EQ(inode(m.get()), inode(metrics.get()));
  EXPECT_EQ(in->left(), 0u);
}

TEST(Upgrade, ABrokenOrShortHandoverIsRefused) {
  std::string why;
  {
    Link link;
    ASSERT_TRUE(send_link(link.a.get(), "not json", {}, why));
    EXPECT_FALSE(Inheritance::receive(link.b.get(), why));
    EXPECT_NE(why.find("not what the old process should send"), std::string::npos) << why;
  }
  {
    Link link;  // the end without a hello
    ASSERT_TRUE(send_link(link.a.get(), R"({"k":"end"})", {}, why));
    EXPECT_FALSE(Inheritance::receive(link.b.get(), why));
    EXPECT_NE(why.find("no hello"), std::string::npos) << why;
  }
  {
    Link link;  // a hello with a field of the wrong type
    ASSERT_TRUE(send_link(link.a.get(), R"({"k":"hello","generation":"x","pid":1})", {}, why));
    EXPECT_FALSE(Inheritance::receive(link.b.get(), why));
    EXPECT_NE(why.find("'hello'"), std::string::npos) << why;
  }
  {
    Link link;  // ticket keys that are not hex
    ASSERT_TRUE(
        send_link(link.a.get(), R"({"k":"hello","generation":1,"pid":1,"tickets":"zz"})", {}, why));
    EXPECT_FALSE(Inheritance::receive(link.b.get(), why));
    EXPECT_NE(why.find("not hex"), std::string::npos) << why;
  }
  {
    Link link;  // the old process went away half-way
    ASSERT_TRUE(send_link(link.a.get(), R"({"k":"hello","generation":1,"pid":1})", {}, why));
    link.a.reset();
    EXPECT_FALSE(Inheritance::receive(link.b.get(), why));
    EXPECT_NE(why.find("closed the upgrade link"), std::string::npos) << why;
  }
  {
    Link link;  // an unknown message
    ASSERT_TRUE(send_link(link.a.get(), R"({"k":"hello","generation":1,"pid":1})", {}, why));
    ASSERT_TRUE(send_link(link.a.get(), R"({"k":"surprise"})", {}, why));
    EXPECT_FALSE(Inheritance::receive(link.b.get(), why));
    EXPECT_NE(why.find("unexpected message 'surprise'"), std::string::npos) << why;
  }
}

TEST(Upgrade, LinkReadsSayTimeoutAndEnd) {
  Link link;
  LinkMessage m;
  std::string why;
  EXPECT_EQ(recv_link(link.b.get(), 0, m, why), LinkRead::kTimeout);
  ASSERT_TRUE(send_link(link.a.get(), R"({"k":"ready","pid":5})", {}, why));
  EXPECT_EQ(recv_link(link.b.get(), 100, m, why), LinkRead::kMessage);
  EXPECT_EQ(m.text, R"({"k":"ready","pid":5})");
  link.a.reset();
  EXPECT_EQ(recv_link(link.b.get(), 100, m, why), LinkRead::kEof);
  std::vector<int> too_many(kMaxFdsPerMessage + 1, 0);
  EXPECT_FALSE(send_link(link.b.get(), "x", too_many, why));
}

}  // namespace
}  // namespace egw::server
