#include "yw/worker/batch_policy.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "yw/common/error.hpp"

namespace yw::worker {

void BatchPolicy::validate() const {
  if (max_batch < 1)
    throw ConfigError(fmt::format("YW_BATCH_MAX: must be at least 1, got {}", max_batch));
  if (max_queue_delay.count() < 0) throw ConfigError("YW_BATCH_DELAY_MS: must not be negative");
  for (const int p : preferred) {
    if (p < 1 || p > max_batch) {
      throw ConfigError(
          fmt::format("preferred batch size {} is outside 1..YW_BATCH_MAX ({})", p, max_batch));
    }
  }
}

BatchDecision decide(std::span<const Clock::time_point> enqueued, const BatchPolicy& policy,
                     Clock::time_point now, bool flush) {
  const int pending = static_cast<int>(enqueued.size());
  if (pending == 0) return BatchDecision::idle();
  const int available = std::min(pending, policy.max_batch);
  // A full batch cannot grow: waiting would only add latency.
  if (pending >= policy.max_batch || flush) return BatchDecision::send(available);

  // Enough work for a preferred size: send the largest one now rather than wait for a bigger
  // batch that may never come.
  int best_preferred = 0;
  for (const int p : policy.preferred)
    if (p <= available) best_preferred = std::max(best_preferred, p);
  if (best_preferred > 0) return BatchDecision::send(best_preferred);

  // Otherwise the oldest item bounds the wait: once it has waited the maximum delay, everything
  // available goes.
  const auto deadline =
      enqueued.front() + std::chrono::duration_cast<Clock::duration>(policy.max_queue_delay);
  if (now >= deadline) return BatchDecision::send(available);
  return BatchDecision::wait_until(deadline);
}

}  // namespace yw::worker
