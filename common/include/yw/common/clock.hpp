#pragma once
// An injectable clock: production code takes a Clock& so tests drive time by hand, never sleep.
#include <chrono>

namespace yw {

class Clock {
 public:
  using duration = std::chrono::steady_clock::duration;
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual time_point now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
  // Never destroyed: process-wide objects (the device batchers) still read it while static
  // destructors run at exit.
  static SteadyClock& instance() {
    static auto* clock = new SteadyClock();
    return *clock;
  }
};

// A clock that only moves when told to. Not thread-safe by design: tests own it.
class ManualClock final : public Clock {
 public:
  time_point now() const override { return now_; }
  void advance(duration d) { now_ += d; }

 private:
  time_point now_{};
};

}  // namespace yw
