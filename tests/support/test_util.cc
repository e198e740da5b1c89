#include "tests/support/test_util.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fcntl.h>
#include <cerrno>
#include <cstring>

#include "egw/clock.h"

namespace egw::test {

Listener listen_loopback(int backlog, bool reuseport, uint16_t port) {
  Listener l;
  l.fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int one = 1;
  ::setsockopt(l.fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuseport) ::setsockopt(l.fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  if (::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      ::listen(l.fd.get(), backlog) != 0) {
    ADD_FAILURE() << "listen on loopback: " << std::strerror(errno);
    return l;
  }
  l.addr = *SocketAddress::local_of(l.fd.get());
  return l;
}

UniqueFd connect_blocking(const SocketAddress& addr) {
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(fd.get(), addr.get(), addr.len()) != 0) {
    ADD_FAILURE() << "connect " << addr.to_string() << ": " << std::strerror(errno);
    return UniqueFd();
  }
  return fd;
}

uint8_t pattern_byte(uint64_t seed, uint64_t offset) {
  uint64_t x = (offset / 8) * 0x9E3779B97F4A7C15ull + seed;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return static_cast<uint8_t>(x >> ((offset % 8) * 8));
}

void fill_pattern(uint64_t seed, uint64_t offset, uint8_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i)
    out[i] = pattern_byte(seed, offset + i);
}

int64_t check_pattern(uint64_t seed, uint64_t offset, const uint8_t* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (data[i] != pattern_byte(seed, offset + i)) return static_cast<int64_t>(i);
  }
  return -1;
}

uint64_t write_pattern(int fd, uint64_t seed, uint64_t total, size_t chunk) {
  std::vector<uint8_t> buf(chunk);
  uint64_t off = 0;
  while (off < total) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk, total - off));
    fill_pattern(seed, off, buf.data(), n);
    size_t done = 0;
    while (done < n) {
      const ssize_t w = ::write(fd, buf.data() + done, n - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        return off + done;
      }
      done += static_cast<size_t>(w);
    }
    off += n;
  }
  return off;
}

int64_t read_check_pattern(int fd, uint64_t seed, uint64_t limit, int64_t* bad_offset) {
  std::vector<uint8_t> buf(65536);
  uint64_t off = 0;
  while (off < limit) {
    const ssize_t r = ::read(fd, buf.data(), std::min<uint64_t>(buf.size(), limit - off));
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (r == 0) break;
    const int64_t bad = check_pattern(seed, off, buf.data(), static_cast<size_t>(r));
    if (bad >= 0) {
      if (bad_offset) *bad_offset = static_cast<int64_t>(off) + bad;
      return -1;
    }
    off += static_cast<uint64_t>(r);
  }
  return static_cast<int64_t>(off);
}

bool run_until(uring::EventLoop& loop, const std::function<bool()>& done, uint64_t timeout_ms) {
  const uint64_t deadline = clock::now_ns() / 1'000'000u + timeout_ms;
  // A 10 ms timer keeps each wait bounded so the deadline is honoured.
  uring::Timer tick;
  tick.set_callback([&] { loop.timers().schedule_after(tick, 10); });
  loop.timers().schedule_after(tick, 10);
  while (!done()) {
    if (clock::now_ns() / 1'000'000u > deadline) {
      loop.timers().cancel(tick);
      return false;
    }
    auto rc = loop.run_once(true);
    if (!rc) {
      ADD_FAILURE() << "run_once: " << rc.error().message();
      loop.timers().cancel(tick);
      return false;
    }
  }
  loop.timers().cancel(tick);
  return true;
}

uring::LoopOptions small_loop_options(unsigned buffers, unsigned buffer_size) {
  uring::LoopOptions o;
  o.ring.sq_entries = 256;
  o.ring.cq_entries = 4096;
  o.buffers.count = buffers;
  o.buffers.size = buffer_size;
  return o;
}

}  // namespace egw::test
