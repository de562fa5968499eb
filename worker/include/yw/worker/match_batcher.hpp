#pragma once
// Rescoring work from many match queries, one device call (as FingerprintBatcher for the
// fingerprint core): each query aligns its candidates on its own thread (compare2_align), hands
// its bit-error tasks here and waits; the batcher merges the tasks of concurrent queries into one
// bit_errors_batch_cuda call (queries concatenated, candidate and query indices rebased).
// On the CPU the twin is called directly (bit_error_fn): batching buys nothing there.
// A sticky CUDA error (device_health.hpp) marks the device unhealthy, and that batch and every
// later one fail back retryable without touching the device, as the fingerprint batcher does.
// Thread-safe.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "yw/common/clock.hpp"
#include "yw/kernels/device.hpp"
#include "yw/worker/batch_policy.hpp"
#include "yw/worker/batcher.hpp"
#include "yw/worker/fingerprint_index.hpp"

namespace yw::worker {

class MatchBatcher {
 public:
  // `run` counts one merged batch (the CUDA twin on a GPU; any BitErrorFn in tests).
  // `device_label` (e.g. "cuda:0") names the device in DeviceHealth and in errors.
  MatchBatcher(BitErrorFn run, BatchPolicy policy, const Clock& clock = SteadyClock::instance(),
               std::string device_label = "cuda");
  ~MatchBatcher();
  MatchBatcher(const MatchBatcher&) = delete;
  MatchBatcher& operator=(const MatchBatcher&) = delete;

  // Blocks until this query's tasks have been counted in some batch; the spans must stay alive
  // until it returns.
  std::vector<std::uint64_t> count(std::span<const std::uint32_t> query,
                                   const std::vector<std::span<const std::uint32_t>>& candidates,
                                   std::span<const BitErrorTask> tasks);
  BatcherStats stats() const;

 private:
  struct Request;
  void run_batch(std::vector<std::shared_ptr<Request>>&& batch);
  BitErrorFn run_;
  std::string device_label_;
  std::unique_ptr<Batcher<std::shared_ptr<Request>>> batcher_;
};

// The device's counter: the CPU twin on the CPU; on cuda:N the process-wide MatchBatcher of that
// device (created with `policy` on first use) in front of the CUDA twin.
BitErrorFn bit_error_fn(const Device& device, const BatchPolicy& policy);

}  // namespace yw::worker
