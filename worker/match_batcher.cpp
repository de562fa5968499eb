#include "yw/worker/match_batcher.hpp"

#include <future>
#include <map>
#include <mutex>

#include "yw/common/device_health.hpp"
#include "yw/common/error.hpp"
#include "yw/kernels/cuda/fingerprint_match_cuda.hpp"
#include "yw/worker/metrics.hpp"

namespace yw::worker {

struct MatchBatcher::Request {
  std::span<const std::uint32_t> query;
  const std::vector<std::span<const std::uint32_t>>* candidates = nullptr;
  std::span<const BitErrorTask> tasks;
  std::promise<std::vector<std::uint64_t>> result;
};

MatchBatcher::MatchBatcher(BitErrorFn run, BatchPolicy policy, const Clock& clock,
                           std::string device_label)
    : run_(std::move(run)), device_label_(std::move(device_label)) {
  const auto capacity = static_cast<std::size_t>(2 * policy.max_batch);
  batcher_ = std::make_unique<Batcher<std::shared_ptr<Request>>>(
      std::move(policy), [this](auto&& batch) { run_batch(std::move(batch)); }, capacity, clock);
}

MatchBatcher::~MatchBatcher() {
  batcher_->stop();
}

std::vector<std::uint64_t> MatchBatcher::count(
    std::span<const std::uint32_t> query,
    const std::vector<std::span<const std::uint32_t>>& candidates,
    std::span<const BitErrorTask> tasks) {
  // Checked here, on the caller's thread, so a bad task fails its own query only.
  check_bit_error_tasks(query.size(), candidates, tasks);
  auto req = std::make_shared<Request>();
  req->query = query;
  req->candidates = &candidates;
  req->tasks = tasks;
  auto future = req->result.get_future();
  auto item = req;
  if (!batcher_->enqueue(item)) YW_THROW("match batcher is stopping");
  return future.get();
}

BatcherStats MatchBatcher::stats() const {
  return batcher_->stats();
}

namespace {

// Fails every query of the batch back retryable: the device, not the query, is at fault, so the
// job runs again on another worker (or on this one after its supervisor restarts it).
template <typename Batch>
void fail_back_unhealthy(const Batch& batch, const std::string& problem) {
  for (const auto& r : batch)
    r->result.set_exception(std::make_exception_ptr(
        Error(fmt::format("match: device unhealthy ({}); failed back for a retry", problem))));
}

}  // namespace

void MatchBatcher::run_batch(std::vector<std::shared_ptr<Request>>&& batch) {
  Metrics::global().observe("yw_batch_size", {{"stage", "match"}},
                            static_cast<double>(batch.size()));
  if (const auto problem = DeviceHealth::global().problem()) {
    fail_back_unhealthy(batch, *problem);
    return;
  }
  std::vector<std::uint32_t> queries;
  std::vector<std::span<const std::uint32_t>> cands;
  std::vector<BitErrorTask> tasks;
  for (const auto& r : batch) {
    const auto qoff = static_cast<std::uint32_t>(queries.size());
    const auto coff = static_cast<std::uint32_t>(cands.size());
    queries.insert(queries.end(), r->query.begin(), r->query.end());
    cands.insert(cands.end(), r->candidates->begin(), r->candidates->end());
    for (auto t : r->tasks) {
      t.candidate += coff;
      t.query_start += qoff;
      tasks.push_back(t);
    }
  }
  try {
    const auto counts = run_(queries, cands, tasks);
    YW_CHECK(counts.size() == tasks.size(), "match batch returned {} counts for {} tasks",
             counts.size(), tasks.size());
    std::size_t at = 0;
    for (const auto& r : batch) {
      std::vector<std::uint64_t> mine(
          counts.begin() + static_cast<std::ptrdiff_t>(at),
          counts.begin() + static_cast<std::ptrdiff_t>(at + r->tasks.size()));
      at += r->tasks.size();
      r->result.set_value(std::move(mine));
    }
  } catch (...) {
    const std::string what = exception_message(std::current_exception());
    // A sticky CUDA error poisons the device for the whole process (device_health.hpp).
    if (is_sticky_device_error(what)) {
      DeviceHealth::global().mark_unhealthy(device_label_, what);
      fail_back_unhealthy(batch, *DeviceHealth::global().problem());
      return;
    }
    for (const auto& r : batch)
      r->result.set_exception(std::current_exception());
  }
}

BitErrorFn bit_error_fn(const Device& device, const BatchPolicy& policy) {
  if (!device.is_cuda()) return &bit_errors_batch_cpu;
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<MatchBatcher>> batchers;
  std::lock_guard lock(mutex);
  auto& slot = batchers[device.index];
  if (!slot) {
    const int index = device.index;
    slot = std::make_unique<MatchBatcher>(
        [index](std::span<const std::uint32_t> query,
                const std::vector<std::span<const std::uint32_t>>& cands,
                std::span<const BitErrorTask> tasks) {
          std::vector<ItemsView> views;
          views.reserve(cands.size());
          for (const auto& c : cands)
            views.push_back({c.data(), c.size()});
          return bit_errors_batch_cuda(query.data(), query.size(), views,
                                       std::vector<BitErrorTask>(tasks.begin(), tasks.end()),
                                       index);
        },
        policy, SteadyClock::instance(), fmt::format("cuda:{}", index));
  }
  MatchBatcher* b = slot.get();
  return [b](std::span<const std::uint32_t> q, const std::vector<std::span<const std::uint32_t>>& c,
             std::span<const BitErrorTask> t) { return b->count(q, c, t); };
}

}  // namespace yw::worker
