#include "yw/worker/fingerprint_batcher.hpp"

#include <future>
#include <map>
#include <mutex>

#include "yw/common/device_health.hpp"
#include "yw/common/error.hpp"
#include "yw/common/log.hpp"
#include "yw/kernels/cuda/fingerprint_cuda.hpp"
#include "yw/kernels/fingerprint.hpp"
#include "yw/worker/metrics.hpp"

namespace yw::worker {

struct FingerprintBatcher::Request {
  std::span<const std::int16_t> samples;
  std::promise<std::vector<std::uint32_t>> result;
};

FingerprintBatchFn fingerprint_batch_fn(const Device& device) {
  if (device.is_cuda()) {
    const int index = device.index;
    return [index](const std::vector<std::span<const std::int16_t>>& signals) {
      std::vector<MonoSignal> in;
      in.reserve(signals.size());
      for (const auto& s : signals)
        in.push_back({s.data(), s.size()});
      return fingerprint_batch_cuda(in, index);
    };
  }
  return [](const std::vector<std::span<const std::int16_t>>& signals) {
    return fingerprint_batch_cpu(signals);
  };
}

FingerprintBatcher::FingerprintBatcher(FingerprintBatchFn run, BatchPolicy policy,
                                       std::string device_label, const Clock& clock)
    : run_(std::move(run)), device_label_(std::move(device_label)) {
  // Capacity bounds how many decoded signals wait for the device; the executor's concurrency
  // already bounds how many jobs decode, so twice a full batch keeps the device fed.
  const auto capacity = static_cast<std::size_t>(2 * policy.max_batch);
  batcher_ = std::make_unique<Batcher<std::shared_ptr<Request>>>(
      std::move(policy), [this](auto&& batch) { run_batch(std::move(batch)); }, capacity, clock);
}

FingerprintBatcher::~FingerprintBatcher() {
  batcher_->stop();
}

std::vector<std::uint32_t> FingerprintBatcher::fingerprint(std::span<const std::int16_t> samples) {
  auto req = std::make_shared<Request>();
  req->samples = samples;
  auto future = req->result.get_future();
  auto item = req;
  if (!batcher_->enqueue(item)) YW_THROW("fingerprint batcher is stopping");
  Metrics::global().set("yw_stage_queue_depth", {{"stage", "fingerprint"}},
                        static_cast<double>(batcher_->pending()));
  return future.get();
}

BatcherStats FingerprintBatcher::stats() const {
  return batcher_->stats();
}

void FingerprintBatcher::run_batch(std::vector<std::shared_ptr<Request>>&& batch) {
  auto& m = Metrics::global();
  // Recorded before the results reach the callers, so a job that completed is in the histogram.
  m.observe("yw_batch_size", {{"stage", "fingerprint"}}, static_cast<double>(batch.size()));
  const auto started = std::chrono::steady_clock::now();
  run_subset(batch);
  const double busy =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  m.add("yw_device_busy_seconds_total", {{"device", device_label_}}, busy);
  m.set("yw_stage_queue_depth", {{"stage", "fingerprint"}},
        static_cast<double>(batcher_->pending()));
}

namespace {

// Fails every request back retryable: the device, not the input, is at fault, so another worker
// (or this one after its supervisor restarts it) can run the jobs.
template <typename Request>
void fail_back_unhealthy(std::span<const std::shared_ptr<Request>> requests,
                         const std::string& problem) {
  for (const auto& r : requests)
    r->result.set_exception(std::make_exception_ptr(Error(
        fmt::format("fingerprint: device unhealthy ({}); failed back for a retry", problem))));
}

}  // namespace

void FingerprintBatcher::run_subset(std::span<const std::shared_ptr<Request>> requests) {
  if (const auto problem = DeviceHealth::global().problem()) {
    fail_back_unhealthy(requests, *problem);
    return;
  }
  std::vector<std::span<const std::int16_t>> signals;
  signals.reserve(requests.size());
  for (const auto& r : requests)
    signals.push_back(r->samples);
  try {
    auto items = run_(signals);
    YW_CHECK(items.size() == requests.size(),
             "fingerprint batch returned {} results for {} signals", items.size(), requests.size());
    for (std::size_t i = 0; i < requests.size(); ++i)
      requests[i]->result.set_value(std::move(items[i]));
  } catch (...) {
    const std::string what = exception_message(std::current_exception());
    // A sticky CUDA error: no retry on this device can succeed (device_health.hpp).
    if (is_sticky_device_error(what)) {
      DeviceHealth::global().mark_unhealthy(device_label_, what);
      fail_back_unhealthy(requests, *DeviceHealth::global().problem());
      return;
    }
    if (requests.size() == 1) {
      requests[0]->result.set_exception(std::current_exception());
      return;
    }
    // Halve and retry: an out-of-memory batch fits in halves (the CUDA twin frees its buffers
    // before it rethrows), and a failing signal ends up alone so the others still complete.
    log(LogLevel::warn, "batcher",
        fmt::format("fingerprint batch of {} failed ({}); retrying in halves", requests.size(),
                    what));
    const std::size_t half = requests.size() / 2;
    run_subset(requests.first(half));
    run_subset(requests.subspan(half));
  }
}

FingerprintBatcher& FingerprintBatcher::for_device(const Device& device,
                                                   const BatchPolicy& policy) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<FingerprintBatcher>> batchers;
  std::lock_guard lock(mutex);
  auto& slot = batchers[device.to_string()];
  if (!slot) {
    slot = std::make_unique<FingerprintBatcher>(fingerprint_batch_fn(device), policy,
                                                device.to_string());
  }
  return *slot;
}

}  // namespace yw::worker
