// The two separators behind yw::models::Separator: the built-in HPSS one and a TorchScript model
// whose forward batches are shared by every song in flight (design.md §1, the batcher).
#include "yw/models/separator.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <list>
#include <mutex>
#include <thread>

#include <fmt/ranges.h>
#include "bag.hpp"
#include "torch_runner_abi.hpp"

#include "yw/common/device_health.hpp"
#include "yw/common/error.hpp"
#include "yw/common/log.hpp"
#include "yw/kernels/cuda/hpss_cuda.hpp"
#include "yw/kernels/hpss.hpp"
#include "yw/models/apply.hpp"

namespace yw::models {
namespace {

class HpssSeparator final : public Separator {
 public:
  explicit HpssSeparator(Device device) : device_(device) {}
  const std::string& name() const override { return name_; }
  const std::vector<std::string>& sources() const override { return sources_; }

  using Separator::separate;
  std::vector<Stem> separate(const Audio& mix, const SeparateOptions&,
                             const ProgressFn& progress) override {
    YW_CHECK_INPUT(mix.frames > 0 && mix.channels > 0, "audio: no samples to separate");
    std::vector<Stem> stems{
        {"harmonic", Audio::zeros(mix.sample_rate, mix.channels, mix.frames)},
        {"percussive", Audio::zeros(mix.sample_rate, mix.channels, mix.frames)}};
    for (int c = 0; c < mix.channels; ++c) {
      if (device_.is_cuda()) {
        hpss_cuda(cfg_, mix.channel(c), mix.frames, stems[0].audio.channel(c),
                  stems[1].audio.channel(c), device_.index);
      } else {
        hpss_cpu(cfg_, mix.channel(c), mix.frames, stems[0].audio.channel(c),
                 stems[1].audio.channel(c));
      }
      if (progress) progress(static_cast<double>(c + 1) / mix.channels);
    }
    return stems;
  }

 private:
  Device device_;
  HpssConfig cfg_;
  std::string name_ = "hpss";
  std::vector<std::string> sources_{"harmonic", "percussive"};
};

// One runner thread owns the model; callers hand it songs and wait. Each forward batch takes
// segments round-robin from every song in flight; a partial batch waits up to batch_delay_ms
// for other songs before it runs.
class ModelSeparator final : public Separator {
 public:
  ModelSeparator(std::unique_ptr<SegmentModel> model, const SeparatorOptions& options,
                 std::string name)
      : model_(std::move(model)),
        name_(std::move(name)),
        delay_(options.batch_delay_ms),
        on_batch_(options.on_batch) {
    cfg_.batch_max = std::max(1, options.batch_max);
    cfg_.segment_seconds = options.segment_seconds;
    sources_ = model_->info().sources;
    segment_ = segment_length(model_->info(), cfg_);
    thread_ = std::thread([this] { run(); });
  }

  ~ModelSeparator() override {
    {
      std::lock_guard lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  const std::string& name() const override { return name_; }
  const std::vector<std::string>& sources() const override { return sources_; }

  using Separator::separate;
  std::vector<Stem> separate(const Audio& mix, const SeparateOptions& options,
                             const ProgressFn& progress) override {
    // Conversion and normalisation run on the caller's thread, in parallel across jobs. Every
    // song's segments have the model's window, so any songs can share a batch.
    ApplyConfig cfg = cfg_;
    cfg.shifts = options.shifts;
    cfg.seed = options.seed;
    cfg.overlap = options.overlap;
    cfg.chunk_seconds = options.segment_seconds;
    cfg.model_rate_output = options.model_rate;
    SongApply song(*model_, cfg, mix);
    Pending p{&song, &progress, std::chrono::steady_clock::now(), {}};
    auto done = p.done.get_future();
    {
      std::lock_guard lock(m_);
      YW_CHECK(!stop_, "separator {} is shutting down", name_);
      active_.push_back(&p);
    }
    cv_.notify_all();
    done.get();  // rethrows the model's failure
    return song.finish();
  }

 private:
  struct Pending {
    SongApply* song;
    const ProgressFn* progress;
    std::chrono::steady_clock::time_point since;
    std::promise<void> done;
  };

  void run() {
    const int64_t in_size = model_->info().channels * segment_;
    const int64_t out_size = static_cast<int64_t>(sources_.size()) * in_size;
    std::vector<float> in(static_cast<size_t>(cfg_.batch_max * in_size));
    std::vector<float> out(static_cast<size_t>(cfg_.batch_max * out_size));
    std::vector<std::pair<Pending*, int64_t>> batch;
    std::vector<Pending*> songs;
    size_t cursor = 0;
    for (;;) {
      {
        std::unique_lock lock(m_);
        cv_.wait(lock, [&] { return stop_ || !active_.empty(); });
        if (stop_ && active_.empty()) return;
        // Wait for company while the songs in flight cannot fill a batch.
        for (;;) {
          int64_t left = 0;
          auto oldest = std::chrono::steady_clock::time_point::max();
          for (auto* p : active_) {
            left += p->song->segments_left();
            oldest = std::min(oldest, p->since);
          }
          const auto deadline = oldest + std::chrono::milliseconds(delay_);
          if (stop_ || left >= cfg_.batch_max || std::chrono::steady_clock::now() >= deadline)
            break;
          cv_.wait_until(lock, deadline);
        }
        songs.assign(active_.begin(), active_.end());
      }
      // Only this thread touches a song's segments while it is active; its caller is waiting.
      batch.clear();
      for (size_t tried = 0; tried < songs.size() * static_cast<size_t>(cfg_.batch_max) &&
                             static_cast<int>(batch.size()) < cfg_.batch_max;
           ++tried) {
        Pending* p = songs[cursor++ % songs.size()];
        if (!p->song->has_next()) continue;
        batch.emplace_back(p, p->song->fill_next(&in[batch.size() * static_cast<size_t>(in_size)]));
      }
      if (batch.empty()) {
        // Every active song has all its segments out; none can be left waiting here, since
        // a song leaves active_ when its last output is in.
        continue;
      }
      const auto started = std::chrono::steady_clock::now();
      std::vector<std::exception_ptr> errors(batch.size());
      forward_range(in, out, 0, batch.size(), errors);
      if (on_batch_) {
        on_batch_(
            static_cast<int>(batch.size()),
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      }
      // A song fails when one of its segments failed alone; every other song goes on.
      std::vector<std::pair<Pending*, std::exception_ptr>> finished;
      const auto failed = [&](Pending* p) {
        return std::find_if(finished.begin(), finished.end(), [p](const auto& f) {
                 return f.first == p && f.second;
               }) != finished.end();
      };
      for (size_t b = 0; b < batch.size(); ++b) {
        Pending* p = batch[b].first;
        if (errors[b]) {
          if (!failed(p)) finished.emplace_back(p, errors[b]);
          continue;
        }
        if (failed(p)) continue;
        p->song->accumulate(batch[b].second, &out[b * static_cast<size_t>(out_size)]);
        if (*p->progress) (*p->progress)(p->song->progress());
        if (p->song->complete()) finished.emplace_back(p, nullptr);
      }
      {
        std::lock_guard lock(m_);
        for (auto& f : finished)
          active_.remove(f.first);
      }
      for (auto& [p, error] : finished) {
        if (error)
          p->done.set_exception(error);
        else
          p->done.set_value();
      }
    }
  }

  // Runs segments [first, first + count) of the filled batch. A failing forward (a CUDA
  // out-of-memory above all) is retried in halves, so a smaller batch still gets through and a
  // segment that fails on its own is pinned to its song alone.
  void forward_range(const std::vector<float>& in, std::vector<float>& out, size_t first,
                     size_t count, std::vector<std::exception_ptr>& errors) {
    const size_t in_size = static_cast<size_t>(model_->info().channels * segment_);
    const size_t out_size = sources_.size() * in_size;
    try {
      model_->forward(&in[first * in_size], static_cast<int>(count), segment_,
                      &out[first * out_size]);
    } catch (const std::exception& e) {
      // A sticky CUDA error poisons the context for good (device_health.hpp): no retry in halves;
      // every segment of the range fails back retryable.
      if (is_sticky_device_error(e.what())) {
        DeviceHealth::global().mark_unhealthy(name_, e.what());
        const auto fault = std::make_exception_ptr(Error(
            fmt::format("{}: device unhealthy ({}); failed back for a retry", name_, e.what())));
        for (size_t i = first; i < first + count; ++i)
          errors[i] = fault;
        return;
      }
      if (count == 1) {
        errors[first] = std::current_exception();
        return;
      }
      log(LogLevel::warn, "separator",
          fmt::format("{}: forward of {} segments failed ({}); retrying in halves", name_, count,
                      e.what()));
      const size_t half = count / 2;
      forward_range(in, out, first, half, errors);
      forward_range(in, out, first + half, count - half, errors);
    } catch (...) {
      errors[first] = std::current_exception();
      for (size_t i = first + 1; i < first + count; ++i)
        errors[i] = errors[first];
    }
  }

  std::unique_ptr<SegmentModel> model_;
  std::string name_;
  std::vector<std::string> sources_;
  ApplyConfig cfg_;
  int64_t segment_ = 0;
  int delay_;
  BatchObserver on_batch_;
  std::mutex m_;
  std::condition_variable cv_;
  std::list<Pending*> active_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Separator> make_batched_separator(std::unique_ptr<SegmentModel> model,
                                                  const SeparatorOptions& options,
                                                  std::string name) {
  YW_CHECK(model != nullptr, "make_batched_separator: no model");
  return std::make_unique<ModelSeparator>(std::move(model), options, std::move(name));
}

std::unique_ptr<Separator> open_separator(const SeparatorOptions& options) {
  if (options.model_path.empty()) return std::make_unique<HpssSeparator>(options.device);
  auto model = is_bag_manifest(options.model_path)
                   ? load_bag(options.model_path, options.device, options.threads)
                   : load_torch_model(options.model_path, options.device, options.threads);
  const auto& info = model->info();
  log_info("models", "model {}: sources [{}], {} Hz, {} channels, segment {} samples",
           options.model_path, fmt::join(info.sources, ", "), info.sample_rate, info.channels,
           info.segment_samples);
  return make_batched_separator(std::move(model), options,
                                std::filesystem::path(options.model_path).stem().string());
}

}  // namespace yw::models
