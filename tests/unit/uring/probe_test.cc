#include "uring/probe.h"

#include <gtest/gtest.h>

namespace egw::uring {
namespace {

// The kTLS probe (the only one in the process) always says what it saw, and
// the feature report carries it.
TEST(Probe, KernelTlsSaysWhy) {
  const Features& f = features();
  EXPECT_FALSE(f.ktls_reason.empty());
  RecordProperty("ktls", f.ktls_reason);
  if (!f.ktls) {
    EXPECT_NE(f.ktls_reason.find("TCP_ULP"), std::string::npos) << f.ktls_reason;
  }
  if (f.available) {
    EXPECT_NE(f.report().find("kernel TLS: " + std::string(f.ktls ? "yes" : "no") + " (" +
                              f.ktls_reason + ")"),
              std::string::npos)
        << f.report();
  }
}

}  // namespace
}  // namespace egw::uring
