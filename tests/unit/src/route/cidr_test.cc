#include "src/route/cidr.h"

#include <gtest/gtest.h>

namespace egw::route {
namespace {

Cidr must_parse(std::string_view text) {
  auto c = Cidr::parse(text);
  EXPECT_TRUE(c.has_value()) << text;
  return c.value_or(*Cidr::parse("255.255.255.255"));
}

SocketAddress addr(std::string_view text) {
  auto a = SocketAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(SocketAddress());
}

TEST(Cidr, ParsesBlocksAndBareAddresses) {
  EXPECT_EQ(must_parse("10.0.0.0/8").to_string(), "10.0.0.0/8");
  EXPECT_EQ(must_parse("fe80::/10").to_string(), "fe80::/10");
  EXPECT_EQ(must_parse("127.0.0.1").to_string(), "127.0.0.1/32");
  EXPECT_EQ(must_parse("::1").to_string(), "::1/128");
  EXPECT_EQ(must_parse("0.0.0.0/0").to_string(), "0.0.0.0/0");
  EXPECT_EQ(must_parse("::/0").to_string(), "::/0");
  EXPECT_TRUE(must_parse("10.0.0.0/8").is_ipv4());
  EXPECT_FALSE(must_parse("::/0").is_ipv4());
}

TEST(Cidr, RejectsMalformedText) {
  for (std::string_view bad :
       {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/8/8", "10.0.0.0/+8",
        "10.0.0.0/08", "10.0.0.0/ 8", " 10.0.0.0/8", "10.0.0/8", "10.0.0.256", "010.0.0.0/8",
        "example.com", "[::1]", "fe80::1%eth0", "::1/1000", "10.0.0.0/-1", "1:2:3:4:5:6:7:8:9"}) {
    EXPECT_FALSE(Cidr::parse(bad).has_value()) << bad;
  }
}

TEST(Cidr, RejectsBitsPastThePrefix) {
  EXPECT_FALSE(Cidr::parse("10.0.0.1/8").has_value());
  EXPECT_TRUE(Cidr::parse("10.128.0.0/9").has_value());  // the last bit kept is set
  EXPECT_FALSE(Cidr::parse("10.64.0.0/9").has_value());
  EXPECT_FALSE(Cidr::parse("fe80::1/64").has_value());
  EXPECT_FALSE(Cidr::parse("::ffff:10.0.0.0/80").has_value());
}

TEST(Cidr, MatchesIpv4ByPrefix) {
  const Cidr c = must_parse("10.0.0.0/8");
  EXPECT_TRUE(c.contains(addr("10.0.0.0:1")));
  EXPECT_TRUE(c.contains(addr("10.255.255.255:1")));
  EXPECT_FALSE(c.contains(addr("11.0.0.0:1")));
  EXPECT_FALSE(c.contains(addr("9.255.255.255:1")));

  const Cidr odd = must_parse("192.168.4.0/22");  // a prefix inside a byte
  EXPECT_TRUE(odd.contains(addr("192.168.4.1:1")));
  EXPECT_TRUE(odd.contains(addr("192.168.7.255:1")));
  EXPECT_FALSE(odd.contains(addr("192.168.8.0:1")));
  EXPECT_FALSE(odd.contains(addr("192.168.3.255:1")));
}

TEST(Cidr, BareAddressIsASingleHost) {
  EXPECT_TRUE(must_parse("127.0.0.1").contains(addr("127.0.0.1:80")));
  EXPECT_FALSE(must_parse("127.0.0.1").contains(addr("127.0.0.2:80")));
  EXPECT_TRUE(must_parse("::1").contains(addr("[::1]:80")));
  EXPECT_FALSE(must_parse("::1").contains(addr("[::2]:80")));
}

TEST(Cidr, MatchesIpv6ByPrefix) {
  const Cidr c = must_parse("fe80::/10");
  EXPECT_TRUE(c.contains(addr("[fe80::1]:1")));
  EXPECT_TRUE(c.contains(addr("[febf:ffff::1]:1")));
  EXPECT_FALSE(c.contains(addr("[fec0::1]:1")));
  EXPECT_FALSE(c.contains(addr("[::1]:1")));
}

TEST(Cidr, FamiliesDoNotMix) {
  EXPECT_FALSE(must_parse("0.0.0.0/0").contains(addr("[::1]:1")));
  EXPECT_FALSE(must_parse("::/0").contains(addr("10.0.0.1:1")));
  EXPECT_TRUE(must_parse("0.0.0.0/0").contains(addr("10.0.0.1:1")));
  EXPECT_TRUE(must_parse("::/0").contains(addr("[2001:db8::1]:1")));
}

TEST(Cidr, Ipv4MappedPeerMatchesIpv4Block) {
  const Cidr c = must_parse("10.0.0.0/8");
  EXPECT_TRUE(c.contains(addr("[::ffff:10.1.2.3]:1")));
  EXPECT_FALSE(c.contains(addr("[::ffff:11.1.2.3]:1")));
  // A mapped peer is IPv4 only: an IPv6 block does not see it.
  EXPECT_FALSE(must_parse("::/0").contains(addr("[::ffff:10.1.2.3]:1")));
}

TEST(Cidr, Ipv4MappedBlockIsAnIpv4Block) {
  const Cidr c = must_parse("::ffff:10.0.0.0/104");
  EXPECT_TRUE(c.is_ipv4());
  EXPECT_EQ(c.to_string(), "10.0.0.0/8");
  EXPECT_TRUE(c.contains(addr("10.9.9.9:1")));
  EXPECT_TRUE(c.contains(addr("[::ffff:10.9.9.9]:1")));
  EXPECT_FALSE(c.contains(addr("11.0.0.0:1")));
}

TEST(Cidr, ContainsNothingThatIsNotAnIpAddress) {
  EXPECT_FALSE(must_parse("0.0.0.0/0").contains(std::string_view()));
  EXPECT_FALSE(must_parse("0.0.0.0/0").contains(SocketAddress()));
}

TEST(Cidr, CanonicalIpUnmapsOnlyMappedAddresses) {
  const SocketAddress mapped = addr("[::ffff:1.2.3.4]:1");
  EXPECT_EQ(canonical_ip(mapped.ip_bytes()), std::string_view("\x01\x02\x03\x04", 4));
  const SocketAddress v6 = addr("[::1.2.3.4]:1");  // IPv4-compatible, not mapped
  EXPECT_EQ(canonical_ip(v6.ip_bytes()).size(), 16u);
}

}  // namespace
}  // namespace egw::route
