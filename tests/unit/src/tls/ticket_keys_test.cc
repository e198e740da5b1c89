#include "src/tls/ticket_keys.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

namespace egw::tls {
namespace {

struct Sealed {
  uint8_t name[TicketKeys::kNameSize];
  uint8_t iv[TicketKeys::kIvSize];
  uint8_t mac[TicketKeys::kMacSize];
  std::vector<uint8_t> data;
};

const std::string kPlain = "an internal ticket: master secret, cipher suite, timestamps";

Sealed seal(TicketKeys& keys) {
  Sealed s;
  s.data.assign(kPlain.begin(), kPlain.end());
  int out = -1;
  EXPECT_TRUE(keys.seal(s.name, s.iv, s.mac, s.data.data(), static_cast<int>(s.data.size()), &out));
  EXPECT_EQ(out, static_cast<int>(kPlain.size()));
  return s;
}

TicketKeys::Opened open(TicketKeys& keys, Sealed s) {
  int out = -1;
  const auto r =
      keys.open(s.name, s.iv, s.mac, s.data.data(), static_cast<int>(s.data.size()), &out);
  if (r != TicketKeys::Opened::kReject) {
    EXPECT_EQ(out, static_cast<int>(kPlain.size()));
    EXPECT_EQ(std::string(s.data.begin(), s.data.end()), kPlain);
  }
  return r;
}

TEST(TicketKeys, SealsAndOpens) {
  TicketKeys keys;
  Sealed s = seal(keys);
  EXPECT_NE(std::memcmp(s.data.data(), kPlain.data(), kPlain.size()), 0);  // encrypted
  EXPECT_EQ(open(keys, s), TicketKeys::Opened::kOk);
}

TEST(TicketKeys, ExportedKeysOpenTicketsInAnotherHolder) {
  TicketKeys old_keys;
  Sealed before = seal(old_keys);
  old_keys.rotate();
  Sealed after = seal(old_keys);
  TicketKeys next;
  EXPECT_EQ(open(next, after), TicketKeys::Opened::kReject);  // its own keys
  ASSERT_TRUE(next.import_keys(old_keys.export_keys()));
  EXPECT_EQ(open(next, after), TicketKeys::Opened::kOk);
  EXPECT_EQ(open(next, before), TicketKeys::Opened::kRenew);  // the previous key came too
  Sealed fresh = seal(next);
  EXPECT_EQ(open(old_keys, fresh), TicketKeys::Opened::kOk);
}

TEST(TicketKeys, ImportRefusesWhatExportDidNotMake) {
  TicketKeys keys;
  Sealed s = seal(keys);
  std::string state = keys.export_keys();
  EXPECT_FALSE(keys.import_keys(""));
  EXPECT_FALSE(keys.import_keys(state.substr(1)));
  state[0] = 9;
  EXPECT_FALSE(keys.import_keys(state));
  EXPECT_EQ(open(keys, s), TicketKeys::Opened::kOk);  // unchanged
}

TEST(TicketKeys, TamperedTicketIsRejected) {
  TicketKeys keys;
  Sealed s = seal(keys);
  Sealed bad_data = s;
  bad_data.data[3] ^= 1;
  EXPECT_EQ(open(keys, bad_data), TicketKeys::Opened::kReject);
  Sealed bad_tag = s;
  bad_tag.mac[0] ^= 1;
  EXPECT_EQ(open(keys, bad_tag), TicketKeys::Opened::kReject);
  Sealed bad_iv = s;
  bad_iv.iv[0] ^= 1;
  EXPECT_EQ(open(keys, bad_iv), TicketKeys::Opened::kReject);
  Sealed bad_name = s;
  bad_name.name[0] ^= 1;
  EXPECT_EQ(open(keys, bad_name), TicketKeys::Opened::kReject);
}

TEST(TicketKeys, OtherInstanceCannotOpen) {
  TicketKeys a, b;
  EXPECT_EQ(open(b, seal(a)), TicketKeys::Opened::kReject);
}

TEST(TicketKeys, PreviousKeyOpensWithRenewalOlderIsRejected) {
  TicketKeys keys;
  Sealed s = seal(keys);
  keys.rotate();
  EXPECT_EQ(keys.rotations(), 1u);
  EXPECT_EQ(open(keys, s), TicketKeys::Opened::kRenew);
  EXPECT_EQ(open(keys, seal(keys)), TicketKeys::Opened::kOk);
  keys.rotate();
  EXPECT_EQ(open(keys, s), TicketKeys::Opened::kReject);
}

std::atomic<uint64_t> g_fake_ms{1'000'000};
uint64_t fake_now() {
  return g_fake_ms.load();
}

TEST(TicketKeys, RotatesLazilyWhenDue) {
  TicketKeys keys(60, fake_now);
  Sealed s = seal(keys);
  g_fake_ms += 59'000;
  EXPECT_EQ(open(keys, s), TicketKeys::Opened::kOk);
  EXPECT_EQ(keys.rotations(), 0u);
  g_fake_ms += 1'000;
  EXPECT_EQ(open(keys, s), TicketKeys::Opened::kRenew);  // rotated on use
  EXPECT_EQ(keys.rotations(), 1u);
  g_fake_ms += 60'000;
  EXPECT_EQ(open(keys, s), TicketKeys::Opened::kReject);
  EXPECT_EQ(keys.rotations(), 2u);
}

TEST(TicketKeys, ZeroPeriodNeverRotatesByItself) {
  TicketKeys keys(0, fake_now);
  Sealed s = seal(keys);
  g_fake_ms += 1'000'000'000;
  EXPECT_EQ(open(keys, s), TicketKeys::Opened::kOk);
  EXPECT_EQ(keys.rotations(), 0u);
}

}  // namespace
}  // namespace egw::tls
