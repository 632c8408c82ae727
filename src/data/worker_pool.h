// A fixed pool of threads that runs the iterations of one loop at a time (internal header of src/data).
//
// Why not at::parallel_for: its threads are the ones training uses (intra-op), and OpenMP's pool cannot be
// sized apart from them; decoding must run beside training, on its own `data.workers` threads.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace pdeq::data::detail {

class WorkerPool {
 public:
  /// The pool size for a `data.workers` value: itself when positive, 0 = one thread per hardware thread.
  static int64_t size_for(int64_t workers) {
    return workers > 0 ? workers
                       : std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
  }

  /// `threads` >= 1 threads run each loop: the caller of parallel_for and threads - 1 background ones.
  explicit WorkerPool(int64_t threads) {
    for (int64_t t = 1; t < threads; ++t) threads_.emplace_back([this] { work(); });
  }
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& thread : threads_) thread.join();
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int64_t threads() const { return static_cast<int64_t>(threads_.size()) + 1; }

  /// Runs body(i) for i in [0, n), each exactly once, in any order and on any pool thread; returns when all
  /// are done. The first exception thrown by a body is re-thrown here (the other iterations still run). Not
  /// re-entrant: one loop at a time.
  void parallel_for(int64_t n, const std::function<void(int64_t)>& body) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body_ = &body;
      size_ = n;
      next_ = 0;
      running_ = 0;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    run_iterations();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return next_ >= size_ && running_ == 0; });
    body_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  /// Claims and runs iterations of the current loop until none is left.
  void run_iterations() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (body_ != nullptr && next_ < size_) {
      const int64_t i = next_++;
      ++running_;
      const auto* body = body_;
      lock.unlock();
      std::exception_ptr error;
      try {
        (*body)(i);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      if (error && !error_) error_ = error;
      --running_;
    }
    if (next_ >= size_ && running_ == 0) done_.notify_all();
  }

  void work() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      run_iterations();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_;  ///< a new loop or stop
  std::condition_variable done_;  ///< the last running iteration finished
  const std::function<void(int64_t)>* body_ = nullptr;
  int64_t size_ = 0, next_ = 0, running_ = 0;
  uint64_t generation_ = 0;
  std::exception_ptr error_;
  bool stop_ = false;
};

}  // namespace pdeq::data::detail
