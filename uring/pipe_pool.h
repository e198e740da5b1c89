// PipePool: the worker's kernel pipes for splice relays, each resized to
// `pipe_size` (capped by /proc/sys/fs/pipe-max-size). Each pipe costs two
// descriptors, so the pool is capped (HAProxy's maxpipes); past the cap a
// relay takes the copy path instead.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "egw/unique_fd.h"

namespace egw::uring {

struct Pipe {
  UniqueFd read_end;
  UniqueFd write_end;
  unsigned capacity = 0;
};

class PipePool {
 public:
  explicit PipePool(unsigned max_pipes = 1024, unsigned pipe_size = 1u << 20);
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  // An empty pipe, or nullptr when the cap is reached or pipe2() fails.
  std::unique_ptr<Pipe> get();
  // Returns a pipe. Only an empty pipe is kept; one that may hold bytes is
  // closed (a later relay must never see another's data).
  void put(std::unique_ptr<Pipe> pipe, bool empty);

  unsigned in_use() const { return in_use_; }
  unsigned idle() const { return static_cast<unsigned>(idle_.size()); }
  uint64_t exhausted() const { return exhausted_; }

 private:
  const unsigned max_;
  const unsigned size_;
  unsigned in_use_ = 0;
  uint64_t exhausted_ = 0;
  std::vector<std::unique_ptr<Pipe>> idle_;
};

}  // namespace egw::uring
