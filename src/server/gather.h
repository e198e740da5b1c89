// Gather: asks every worker for something only its thread may read (run
// there through its mailbox) and waits a bounded time for the answers. Used
// by the metrics scrape and the admin API; the caller reads the results
// under lock(), since a worker that answers after the wait still writes its
// slot.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "src/server/worker.h"

namespace egw::server {

template <class T>
class Gather {
 public:
  using Fn = std::function<void(Worker&, T&)>;

  // Runs `fn(worker, result)` on each worker's thread and waits at most
  // `wait` for all of them.
  static std::shared_ptr<Gather> run(const std::vector<std::unique_ptr<Worker>>& workers, Fn fn,
                                     std::chrono::milliseconds wait) {
    auto g = std::make_shared<Gather>();
    g->fn_ = std::move(fn);
    g->results.resize(workers.size());
    g->answered.assign(workers.size(), false);
    unsigned posted = 0;
    for (size_t i = 0; i < workers.size(); ++i) {
      Worker* w = workers[i].get();
      if (w->post([w, g, i] {
            T r{};
            g->fn_(*w, r);
            std::lock_guard<std::mutex> lock(g->mu_);
            g->results[i] = std::move(r);
            g->answered[i] = true;
            ++g->answers_;
            g->cv_.notify_all();
          }))
        ++posted;
    }
    std::unique_lock<std::mutex> lock(g->mu_);
    g->cv_.wait_for(lock, wait, [&] { return g->answers_ >= posted; });
    return g;
  }

  // Hold while reading `results` and `answered`.
  std::unique_lock<std::mutex> lock() { return std::unique_lock<std::mutex>(mu_); }

  std::vector<T> results;
  std::vector<bool> answered;

 private:
  Fn fn_;
  std::mutex mu_;
  std::condition_variable cv_;
  unsigned answers_ = 0;
};

}  // namespace egw::server
