#pragma once
// Graceful shutdown (design.md §6, style.md habit 12) as a state machine driven by an injected
// clock, so tests step through it without sleeping:
//
//   running --signal--> draining --(in flight = 0)---------------------------> stopped
//                          |  \--(deadline passed, or a second signal)--> failing_back
//                          |                                                   |
//                          \------------------------(failed back)-------------/--> stopped
//
// While draining no new job is fetched and running jobs may finish until the deadline
// (YW_SHUTDOWN_TIMEOUT_S after the first signal). In failing_back, jobs still running are
// failed back to pg-boss as retryable so another worker takes them at once. Thread-safe.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string_view>

#include "yw/common/clock.hpp"

namespace yw::worker {

enum class ShutdownPhase { running, draining, failing_back, stopped };
std::string_view to_string(ShutdownPhase phase);

class ShutdownController {
 public:
  ShutdownController(const Clock& clock, Clock::duration timeout);

  // A SIGINT/SIGTERM (or an equivalent request). The first starts draining; any later one,
  // while jobs still run, skips the rest of the wait.
  void request_stop(std::string_view reason);
  // Re-evaluates the phase against the clock and the number of jobs in flight; returns it.
  ShutdownPhase update(int jobs_in_flight);
  // The executor has failed back every job that was still running.
  void failed_back();

  ShutdownPhase phase() const;
  bool fetching_allowed() const { return phase() == ShutdownPhase::running; }
  // When draining ends by itself; meaningful once draining.
  Clock::time_point deadline() const;
  int signals_received() const;

  // Blocks until a request arrives, the phase changes, or `until` (real time) passes. Used by
  // the main loop; tests do not need it.
  void wait_until(std::chrono::steady_clock::time_point until);
  void notify();

 private:
  const Clock& clock_;
  const Clock::duration timeout_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  ShutdownPhase phase_ = ShutdownPhase::running;
  Clock::time_point deadline_{};
  int signals_ = 0;
  bool escalated_ = false;
  bool dirty_ = false;
};

// Blocks SIGINT and SIGTERM in the calling thread (call before any thread starts, so every
// thread inherits the mask) and delivers them from a dedicated thread to `controller`.
class SignalWatcher {
 public:
  explicit SignalWatcher(ShutdownController& controller);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace yw::worker
