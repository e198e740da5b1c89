#include "src/tls/digest.h"

#include <gtest/gtest.h>

namespace egw::tls {
namespace {

TEST(Digest, WebSocketAcceptOfRfc6455Example) {
  // RFC 6455 §1.3.
  EXPECT_EQ(websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(Digest, Base64Padding) {
  const uint8_t d[] = {'f', 'o', 'o', 'b', 'a', 'r'};
  EXPECT_EQ(base64(d, 0), "");
  EXPECT_EQ(base64(d, 1), "Zg==");
  EXPECT_EQ(base64(d, 2), "Zm8=");
  EXPECT_EQ(base64(d, 3), "Zm9v");
  EXPECT_EQ(base64(d, 6), "Zm9vYmFy");
}

}  // namespace
}  // namespace egw::tls
