// expressgateway: the gateway's entry point.
#include <cstdio>

#include "uring/probe.h"

int main() {
  std::puts(egw::uring::features().report().c_str());
  return 0;
}
