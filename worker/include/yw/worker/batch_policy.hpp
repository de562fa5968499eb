#pragma once
// The batching decision as a pure function (style.md habit 6; Triton's dynamic batcher semantics):
// build the largest preferred batch size available; if none can be built, wait for more work until
// the oldest item has waited `max_queue_delay`, then send the largest batch available up to
// `max_batch`. A full batch always goes at once. The caller owns the clock.
#include <chrono>
#include <span>
#include <vector>

#include "yw/common/clock.hpp"

namespace yw::worker {

struct BatchPolicy {
  int max_batch = 16;          // YW_BATCH_MAX
  std::vector<int> preferred;  // sizes worth sending at once (e.g. a GPU's sweet spots)
  std::chrono::microseconds max_queue_delay{25'000};  // YW_BATCH_DELAY_MS

  // Throws yw::ConfigError for max_batch < 1, a negative delay, or a preferred size outside
  // [1, max_batch].
  void validate() const;
};

struct BatchDecision {
  enum class Kind { idle, wait, send };
  Kind kind = Kind::idle;
  int count = 0;                // send: how many of the oldest items go now
  Clock::time_point wake_at{};  // wait: when to decide again at the latest

  static BatchDecision idle() { return {}; }
  static BatchDecision send(int n) { return {Kind::send, n, {}}; }
  static BatchDecision wait_until(Clock::time_point t) { return {Kind::wait, 0, t}; }
  bool operator==(const BatchDecision&) const = default;
};

// `enqueued` holds the enqueue times of the pending items, oldest first. `flush` (shutdown, or a
// caller that will not get more work) sends whatever is pending without waiting.
BatchDecision decide(std::span<const Clock::time_point> enqueued, const BatchPolicy& policy,
                     Clock::time_point now, bool flush = false);

}  // namespace yw::worker
