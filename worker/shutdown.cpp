#include "yw/worker/shutdown.hpp"

#include <atomic>
#include <csignal>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "yw/common/log.hpp"

namespace yw::worker {

std::string_view to_string(ShutdownPhase phase) {
  switch (phase) {
    case ShutdownPhase::running:
      return "running";
    case ShutdownPhase::draining:
      return "draining";
    case ShutdownPhase::failing_back:
      return "failing_back";
    case ShutdownPhase::stopped:
      return "stopped";
  }
  return "running";
}

ShutdownController::ShutdownController(const Clock& clock, Clock::duration timeout)
    : clock_(clock), timeout_(timeout) {}

void ShutdownController::request_stop(std::string_view reason) {
  {
    std::lock_guard lock(mutex_);
    ++signals_;
    if (phase_ == ShutdownPhase::running) {
      phase_ = ShutdownPhase::draining;
      deadline_ = clock_.now() + timeout_;
      log(LogLevel::info, "shutdown",
          fmt::format("{}: no new jobs; waiting up to {:.1f} s for running jobs (signal again to "
                      "skip the wait)",
                      reason, std::chrono::duration<double>(timeout_).count()));
    } else if (phase_ == ShutdownPhase::draining) {
      escalated_ = true;
      log(LogLevel::warn, "shutdown",
          fmt::format("{} again: failing running jobs back to the queue now", reason));
    }
    dirty_ = true;
  }
  cv_.notify_all();
}

ShutdownPhase ShutdownController::update(int jobs_in_flight) {
  std::lock_guard lock(mutex_);
  if (phase_ == ShutdownPhase::draining) {
    if (jobs_in_flight <= 0) {
      phase_ = ShutdownPhase::stopped;
    } else if (escalated_ || clock_.now() >= deadline_) {
      phase_ = ShutdownPhase::failing_back;
      if (!escalated_) {
        log(LogLevel::warn, "shutdown",
            fmt::format("timeout reached with {} job(s) running: failing them back as retryable",
                        jobs_in_flight));
      }
    }
  } else if (phase_ == ShutdownPhase::failing_back && jobs_in_flight <= 0) {
    phase_ = ShutdownPhase::stopped;
  }
  return phase_;
}

void ShutdownController::failed_back() {
  {
    std::lock_guard lock(mutex_);
    if (phase_ == ShutdownPhase::failing_back) phase_ = ShutdownPhase::stopped;
    dirty_ = true;
  }
  cv_.notify_all();
}

ShutdownPhase ShutdownController::phase() const {
  std::lock_guard lock(mutex_);
  return phase_;
}

Clock::time_point ShutdownController::deadline() const {
  std::lock_guard lock(mutex_);
  return deadline_;
}

int ShutdownController::signals_received() const {
  std::lock_guard lock(mutex_);
  return signals_;
}

void ShutdownController::wait_until(std::chrono::steady_clock::time_point until) {
  std::unique_lock lock(mutex_);
  cv_.wait_until(lock, until, [this] { return dirty_; });
  dirty_ = false;
}

void ShutdownController::notify() {
  {
    std::lock_guard lock(mutex_);
    dirty_ = true;
  }
  cv_.notify_all();
}

struct SignalWatcher::Impl {
  ShutdownController& controller;
  sigset_t set{};
  std::atomic<bool> stop{false};
  std::thread thread;

  explicit Impl(ShutdownController& c) : controller(c) {
    // A parent may have left these ignored (bash does for background jobs); an ignored signal
    // is discarded even while blocked, so restore the default before blocking.
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    thread = std::thread([this] { loop(); });
  }

  void loop() {
    while (!stop.load()) {
      timespec timeout{0, 100'000'000};
      const int sig = sigtimedwait(&set, nullptr, &timeout);
      if (sig == SIGINT || sig == SIGTERM)
        controller.request_stop(sig == SIGINT ? "SIGINT" : "SIGTERM");
    }
  }

  ~Impl() {
    stop.store(true);
    if (thread.joinable()) thread.join();
  }
};

SignalWatcher::SignalWatcher(ShutdownController& controller) : impl_(new Impl(controller)) {}
SignalWatcher::~SignalWatcher() {
  delete impl_;
}

}  // namespace yw::worker
