// Access log files and the per-worker writers that fill them without ever
// blocking a worker.
//
// File: one log destination (a path, or "-" for standard output), shared by
// every worker and every listener that names it; opened by the control
// thread when the configuration is built (a file that cannot be opened is a
// configuration error), reopened by it on SIGUSR2 / `reopen logs` (after
// logrotate moved it). Reopening swaps the descriptor under a mutex and
// bumps a generation; writers pick the new one up at their next write, and
// the old one closes once the write in flight on it is done, so a line is
// never lost to a rotation: it lands in the old file or in the new one.
//
// Writer: one worker's buffer for one File, an io_uring owner. Lines go into
// the current buffer (formatted in place: no allocation); once per event
// loop iteration the buffer is handed to one io_uring write (O_APPEND on a
// regular file, so workers' writes never interleave inside a line; on a
// pipe or terminal each write is cut at a line boundary within PIPE_BUF,
// which pipes write whole) and the other buffer takes new lines. When both
// are busy and a line does not fit, it is dropped and counted; traffic never
// waits for the disk. A failed write drops its lines (counted, logged).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "egw/inline_function.h"
#include "egw/unique_fd.h"
#include "src/accesslog/format.h"
#include "uring/event_loop.h"

namespace egw::accesslog {

class File {
 public:
  // Opens `path` for appending (created 0640), or standard output for "-";
  // null with `error`.
  static std::shared_ptr<File> open(const std::string& path, std::string& error);

  const std::string& path() const { return path_; }
  // Opens the path again (control thread); false with `error` (the old
  // descriptor stays). Standard output is never reopened.
  bool reopen(std::string& error);

  // For writers: the descriptor now, and its generation.
  std::shared_ptr<const UniqueFd> fd() const;
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  // A regular file: writes of any size append whole. Otherwise (a pipe, a
  // terminal) writes are cut at line boundaries within PIPE_BUF.
  bool regular() const { return regular_; }

 private:
  File() = default;
  std::string path_;
  mutable std::mutex mu_;
  std::shared_ptr<const UniqueFd> fd_;
  std::atomic<uint64_t> generation_{0};
  bool regular_ = true;
};

// Where a writer counts (a worker's stats; relaxed atomics).
struct Counters {
  std::atomic<uint64_t>* lines;
  std::atomic<uint64_t>* dropped;
  std::atomic<uint64_t>* write_errors;
};

class Writer final : public uring::Owner, private uring::Flushable {
 public:
  static constexpr size_t kDefaultBufferBytes = 256 * 1024;

  Writer(uring::EventLoop& loop, std::shared_ptr<File> file, size_t buffer_bytes,
         Counters counters);
  ~Writer() override;

  // Formats one line into the buffer (flushed after this loop iteration);
  // dropped and counted when it does not fit.
  void write(const Format& f, const Record& r);
  // Writes what is buffered and stops: once the write in flight (if any) is
  // done, the rest goes out with blocking write(2) calls (at exit, or when
  // the last configuration naming the file is gone), then `done` runs.
  void close(InlineFunction<void(), 24> done);
  const File& file() const { return *file_; }

 private:
  void flush() override;
  void submit();
  void on_write(const io_uring_cqe& cqe);
  void on_released() override;
  void write_rest_blocking();

  uring::EventLoop& loop_;
  std::shared_ptr<File> file_;
  Counters counters_;
  const size_t cap_;
  std::unique_ptr<char[]> cur_, out_;  // filling / being written
  size_t cur_len_ = 0, out_len_ = 0, out_off_ = 0;
  uint32_t cur_lines_ = 0, out_lines_ = 0;
  std::shared_ptr<const UniqueFd> fd_;
  uint64_t generation_ = 0;
  uring::Completion write_;
  bool closing_ = false;
  InlineFunction<void(), 24> done_;
};

}  // namespace egw::accesslog
