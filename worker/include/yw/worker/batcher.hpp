#pragma once
// The thread around decide() (style.md habit 7): items from many jobs wait here until the policy
// says a batch goes, then the run callback receives the batch by value (ownership moves with it).
// The batcher knows nothing of models or devices; the GPU runner and the CPU runner are two
// callbacks. Bounded: enqueue() blocks while `capacity` items wait, which is what holds the
// fetch loop back when the device is the bottleneck (backpressure).
//
// Thread-safety: enqueue/stop/pending/in_flight may be called from any thread. The callback runs
// on the batcher's own thread, one batch at a time (a device runner is serial per device).
// Tests drive pump() with a ManualClock instead of starting the thread.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "yw/common/clock.hpp"
#include "yw/worker/batch_policy.hpp"

namespace yw::worker {

struct BatcherStats {
  std::uint64_t batches = 0;
  std::uint64_t items = 0;
  std::uint64_t largest_batch = 0;
  std::chrono::nanoseconds busy{0};  // time spent inside the run callback
};

template <typename Item>
class Batcher {
 public:
  using RunBatchFn = std::function<void(std::vector<Item>&&)>;

  Batcher(BatchPolicy policy, RunBatchFn run, std::size_t capacity, const Clock& clock,
          bool start_thread = true)
      : policy_(std::move(policy)), run_(std::move(run)), capacity_(capacity), clock_(clock) {
    policy_.validate();
    if (start_thread) thread_ = std::thread([this] { loop(); });
  }
  ~Batcher() { stop(); }
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Takes ownership of `item`. Blocks while the batcher holds `capacity` items. Returns false
  // (and leaves `item` with the caller) once stop() has been called.
  bool enqueue(Item& item) {
    std::unique_lock lock(mutex_);
    space_.wait(lock, [this] { return stopping_ || pending_.size() < capacity_; });
    if (stopping_) return false;
    pending_.push_back({std::move(item), clock_.now()});
    work_.notify_all();
    return true;
  }

  // Sends what is pending (flushing, without waiting for full batches), then ends the thread.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopping_ && !thread_.joinable()) return;
      stopping_ = true;
    }
    work_.notify_all();
    space_.notify_all();
    if (thread_.joinable()) thread_.join();
    while (pump()) {
    }
  }

  // One decision at the clock's current time: runs at most one batch. Returns true when a batch
  // ran. For tests (with start_thread = false) and for the thread's loop.
  bool pump() { return pump_until(nullptr, nullptr); }

  std::size_t pending() const {
    std::lock_guard lock(mutex_);
    return pending_.size();
  }
  std::size_t in_flight() const {
    std::lock_guard lock(mutex_);
    return pending_.size() + running_;
  }
  BatcherStats stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
  }

 private:
  struct Entry {
    Item item;
    Clock::time_point enqueued;
  };

  // Decides and runs one batch; when there is nothing to send and `wake` is given, stores the
  // time to decide again there (time_point::max() for "when work arrives").
  // `seen` receives how many items were pending when the decision was made: the loop sleeps until
  // that changes, so items enqueued between the decision and the sleep are never missed.
  bool pump_until(Clock::time_point* wake, std::size_t* seen) {
    std::vector<Item> batch;
    {
      std::lock_guard lock(mutex_);
      if (seen != nullptr) *seen = pending_.size();
      times_.clear();
      for (const auto& e : pending_)
        times_.push_back(e.enqueued);
      const BatchDecision d = decide(times_, policy_, clock_.now(), stopping_);
      if (d.kind != BatchDecision::Kind::send) {
        if (wake != nullptr)
          *wake = d.kind == BatchDecision::Kind::wait ? d.wake_at : Clock::time_point::max();
        return false;
      }
      batch.reserve(static_cast<std::size_t>(d.count));
      for (int i = 0; i < d.count; ++i) {
        batch.push_back(std::move(pending_.front().item));
        pending_.pop_front();
      }
      running_ = batch.size();
      // Counted when the batch forms, before its results reach any caller, so a caller that got
      // its result always sees its batch in stats().
      ++stats_.batches;
      stats_.items += batch.size();
      stats_.largest_batch = std::max<std::uint64_t>(stats_.largest_batch, batch.size());
    }
    space_.notify_all();
    const auto started = std::chrono::steady_clock::now();
    run_(std::move(batch));
    const auto busy = std::chrono::steady_clock::now() - started;
    {
      std::lock_guard lock(mutex_);
      running_ = 0;
      stats_.busy += std::chrono::duration_cast<std::chrono::nanoseconds>(busy);
    }
    return true;
  }

  void loop() {
    while (true) {
      Clock::time_point wake{};
      std::size_t seen = 0;
      if (pump_until(&wake, &seen)) continue;
      std::unique_lock lock(mutex_);
      if (stopping_) return;
      // Sleep until the policy's deadline (mapped from the batcher's clock to real time) or new
      // work, whichever comes first.
      const auto pred = [&] { return stopping_ || pending_.size() != seen; };
      if (wake == Clock::time_point::max()) {
        work_.wait(lock, pred);
      } else {
        work_.wait_for(lock, std::max(wake - clock_.now(), Clock::duration::zero()), pred);
      }
    }
  }

  BatchPolicy policy_;
  RunBatchFn run_;
  const std::size_t capacity_;
  const Clock& clock_;
  mutable std::mutex mutex_;
  std::condition_variable work_, space_;
  std::deque<Entry> pending_;
  std::vector<Clock::time_point> times_;
  std::size_t running_ = 0;
  bool stopping_ = false;
  BatcherStats stats_;
  std::thread thread_;
};

}  // namespace yw::worker
