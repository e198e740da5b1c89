#include "src/accesslog/writer.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "egw/log.h"

namespace egw::accesslog {

namespace {

UniqueFd open_path(const std::string& path, std::string& error, bool& regular) {
  UniqueFd fd;
  if (path == "-") {
    fd = UniqueFd(::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3));
  } else {
    fd = UniqueFd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
  }
  if (!fd) {
    error = fmt::format("cannot open access log {}: {}", path, std::strerror(errno));
    return fd;
  }
  struct stat st {};
  regular = ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode);
  return fd;
}

}  // namespace

std::shared_ptr<File> File::open(const std::string& path, std::string& error) {
  std::shared_ptr<File> f(new File());
  f->path_ = path;
  UniqueFd fd = open_path(path, error, f->regular_);
  if (!fd) return nullptr;
  f->fd_ = std::make_shared<const UniqueFd>(std::move(fd));
  return f;
}

bool File::reopen(std::string& error) {
  if (path_ == "-") return true;
  bool regular = true;
  UniqueFd fd = open_path(path_, error, regular);
  if (!fd) return false;
  std::lock_guard<std::mutex> lock(mu_);
  fd_ = std::make_shared<const UniqueFd>(std::move(fd));
  regular_ = regular;
  generation_.fetch_add(1, std::memory_order_release);
  return true;
}

std::shared_ptr<const UniqueFd> File::fd() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fd_;
}

Writer::Writer(uring::EventLoop& loop, std::shared_ptr<File> file, size_t buffer_bytes,
               Counters counters)
    : loop_(loop),
      file_(std::move(file)),
      counters_(counters),
      cap_(buffer_bytes),
      cur_(std::make_unique<char[]>(buffer_bytes)),
      out_(std::make_unique<char[]>(buffer_bytes)) {
  bind<&Writer::on_write>(write_, uring::Op::kWrite);
  generation_ = file_->generation();
  fd_ = file_->fd();
  loop_.attach(*this);
}

Writer::~Writer() {
  flush_node_unlink();
}

void Writer::write(const Format& f, const Record& r) {
  if (closing_) {
    counters_.dropped->fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const size_t n = f.append(r, cur_.get() + cur_len_, cap_ - cur_len_);
  if (n == 0) {
    counters_.dropped->fetch_add(1, std::memory_order_relaxed);
    EGW_LOG_RATELIMITED(warn, 1000,
                        "access log {}: buffer full (the disk is slower than the traffic): "
                        "lines dropped",
                        file_->path());
    return;
  }
  cur_len_ += n;
  ++cur_lines_;
  counters_.lines->fetch_add(1, std::memory_order_relaxed);
  loop_.schedule_flush(*this);
}

void Writer::flush() {
  if (write_.busy() || cur_len_ == 0 || closing_) return;
  std::swap(cur_, out_);
  out_len_ = cur_len_;
  out_lines_ = cur_lines_;
  out_off_ = 0;
  cur_len_ = 0;
  cur_lines_ = 0;
  // A reopened file: this write and the next go to the new descriptor; the
  // old one closes with its last reference.
  if (const uint64_t g = file_->generation(); g != generation_) {
    generation_ = g;
    fd_ = file_->fd();
  }
  submit();
}

void Writer::submit() {
  size_t len = out_len_ - out_off_;
  if (!file_->regular() && len > PIPE_BUF) {
    // Whole lines within PIPE_BUF (a longer line goes alone, as it is).
    const char* base = out_.get() + out_off_;
    size_t cut = 0;
    for (size_t i = PIPE_BUF; i > 0; --i) {
      if (base[i - 1] == '\n') {
        cut = i;
        break;
      }
    }
    if (cut == 0) {
      const void* nl = std::memchr(base, '\n', len);
      cut = nl ? static_cast<size_t>(static_cast<const char*>(nl) - base) + 1 : len;
    }
    len = cut;
  }
  io_uring_sqe* s = loop_.sqe();
  // Offset -1: the file position (O_APPEND: the end).
  io_uring_prep_write(s, fd_->get(), out_.get() + out_off_, static_cast<unsigned>(len),
                      static_cast<uint64_t>(-1));
  loop_.arm(write_, s);
}

void Writer::on_write(const io_uring_cqe& cqe) {
  if (cqe.res > 0) {
    out_off_ += static_cast<size_t>(cqe.res);
  } else if (cqe.res == -EINTR || cqe.res == -EAGAIN) {
    // Nothing written: try again.
  } else {
    counters_.write_errors->fetch_add(1, std::memory_order_relaxed);
    counters_.dropped->fetch_add(out_lines_, std::memory_order_relaxed);
    EGW_LOG_RATELIMITED(error, 1000, "access log {}: write failed: {} ({} lines dropped)",
                        file_->path(), cqe.res == 0 ? "no progress" : std::strerror(-cqe.res),
                        out_lines_);
    out_off_ = out_len_;
  }
  if (closing_) return;  // the rest goes out in on_released
  if (out_off_ < out_len_) {
    submit();
    return;
  }
  out_len_ = out_off_ = 0;
  out_lines_ = 0;
  if (cur_len_) flush();
}

void Writer::close(InlineFunction<void(), 24> done) {
  if (closing_) return;
  closing_ = true;
  done_ = std::move(done);
  flush_node_unlink();
  loop_.retire(*this);  // on_released once the write in flight (if any) is done
}

void Writer::write_rest_blocking() {
  auto put = [&](const char* p, size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd_->get(), p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        counters_.write_errors->fetch_add(1, std::memory_order_relaxed);
        EGW_LOG(error, "access log {}: write failed at close: {}", file_->path(),
                std::strerror(errno));
        return false;
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  };
  if (const uint64_t g = file_->generation(); g != generation_) {
    generation_ = g;
    fd_ = file_->fd();
  }
  if (out_off_ < out_len_ && !put(out_.get() + out_off_, out_len_ - out_off_))
    counters_.dropped->fetch_add(out_lines_, std::memory_order_relaxed);
  out_len_ = out_off_ = 0;
  if (cur_len_ && !put(cur_.get(), cur_len_))
    counters_.dropped->fetch_add(cur_lines_, std::memory_order_relaxed);
  cur_len_ = 0;
}

void Writer::on_released() {
  write_rest_blocking();
  if (done_) {
    auto fn = std::move(done_);
    fn();  // may destroy *this
  }
}

}  // namespace egw::accesslog
