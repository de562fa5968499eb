#pragma once
// Fingerprint work from many jobs, one device call (design.md §1): each fingerprint_audio job
// decodes and resamples on its own CPU thread, then hands its 11025 Hz signal here and waits; the
// batcher groups the signals of concurrent jobs and runs them through one batched cuFFT plan on
// the GPU (fingerprint_batch_cuda) or through the CPU twin. The same code path runs in CPU mode.
//
// Failure isolation: when a batch fails, its signals are retried in halves (a CUDA out-of-memory
// shrinks the batch; a signal that fails alone gets its own error), so one bad item never fails
// the others. Thread-safe.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "yw/common/clock.hpp"
#include "yw/kernels/device.hpp"
#include "yw/worker/batch_policy.hpp"
#include "yw/worker/batcher.hpp"

namespace yw::worker {

// Computes items for several signals at once; out[i] belongs to signals[i].
using FingerprintBatchFn = std::function<std::vector<std::vector<std::uint32_t>>(
    const std::vector<std::span<const std::int16_t>>& signals)>;

// The device's batch function: fingerprint_batch_cuda on cuda:N, fingerprint_batch_cpu otherwise.
FingerprintBatchFn fingerprint_batch_fn(const Device& device);

class FingerprintBatcher {
 public:
  FingerprintBatcher(FingerprintBatchFn run, BatchPolicy policy, std::string device_label,
                     const Clock& clock = SteadyClock::instance());
  ~FingerprintBatcher();
  FingerprintBatcher(const FingerprintBatcher&) = delete;
  FingerprintBatcher& operator=(const FingerprintBatcher&) = delete;

  // Blocks until `samples` (int16 mono 11025 Hz; must stay alive until this returns) has been
  // fingerprinted in some batch. Rethrows the error of its own computation only.
  std::vector<std::uint32_t> fingerprint(std::span<const std::int16_t> samples);

  BatcherStats stats() const;

  // The process-wide batcher for a device, created on first use with `policy`.
  static FingerprintBatcher& for_device(const Device& device, const BatchPolicy& policy);

 private:
  struct Request;
  void run_batch(std::vector<std::shared_ptr<Request>>&& batch);
  void run_subset(std::span<const std::shared_ptr<Request>> requests);

  FingerprintBatchFn run_;
  std::string device_label_;
  std::unique_ptr<Batcher<std::shared_ptr<Request>>> batcher_;
};

}  // namespace yw::worker
