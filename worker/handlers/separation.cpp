// separate_stems (design.md §2): decode, separate with the configured separator (the built-in
// HPSS one, or a TorchScript model whose batches mix segments of every job in flight), write
// each stem completely, store it, and only then complete the job.
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>

#include <fmt/format.h>

#include "yw/common/error.hpp"
#include "yw/common/log.hpp"
#include "yw/kernels/audio_writer.hpp"
#include "yw/models/separator.hpp"
#include "yw/worker/handler.hpp"
#include "yw/worker/job_args.hpp"
#include "yw/worker/metrics.hpp"
#include "yw/worker/storage.hpp"

namespace yw::worker {
namespace {

// One separator per (model, device) for the whole process, so concurrent jobs share its batches.
std::shared_ptr<models::Separator> shared_separator(const WorkerConfig& config,
                                                    const Device& device) {
  static std::mutex m;
  static std::map<std::string, std::shared_ptr<models::Separator>> cache;
  const std::string key = config.model + "|" + device.to_string();
  std::lock_guard lock(m);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  models::SeparatorOptions opt;
  opt.model_path = config.model;
  opt.device = device;
  opt.batch_max = config.batch_max;
  opt.batch_delay_ms = config.batch_delay_ms;
  opt.on_batch = [label = device.to_string()](int segments, double seconds) {
    auto& metrics = Metrics::global();
    metrics.observe("yw_batch_size", {{"stage", "separation"}}, segments);
    metrics.add("yw_device_busy_seconds_total", {{"device", label}}, seconds);
  };
  std::shared_ptr<models::Separator> sep;
  try {
    sep = models::open_separator(opt);
  } catch (const ConfigError& e) {
    // This worker's model is unusable, not the job: fail it retryably so that a correctly
    // configured worker can take it.
    YW_THROW("separate_stems: this worker cannot separate: {}", e.what());
  }
  cache.emplace(key, sep);
  return sep;
}

void check_stop(const JobContext& ctx) {
  if (ctx.stop.stop_requested()) YW_THROW("separate_stems: stopped (job expired or shutting down)");
}

nlohmann::json separate_stems(const nlohmann::json& data, JobContext& ctx) {
  const SeparateArgs args = SeparateArgs::from_json(data);
  const AudioFileFormat format = parse_audio_file_format(args.format, "format");
  const std::string key = artifact_prefix(args.record_id, ctx.id);
  YW_CHECK(ctx.config != nullptr, "separate_stems: no configuration");
  const WorkerConfig& config = *ctx.config;

  auto separator = shared_separator(config, ctx.device);
  YW_CHECK_INPUT(args.model.empty() || args.model == separator->name(),
                 "model: '{}' is not available on this worker (it runs '{}')", args.model,
                 separator->name());

  const LocalInput input = fetch_input(args.audio, config);
  check_stop(ctx);
  models::Audio mix = models::load_audio(input.path());
  check_stop(ctx);
  models::SeparateOptions options;
  options.shifts = args.shifts;
  options.seed = args.seed;
  options.overlap = args.overlap;
  options.segment_seconds = args.segment;
  options.model_rate = args.model_rate;
  const models::ClipMode clip = models::parse_clip_mode(args.clip_mode, "clip_mode");
  auto stems = separator->separate(mix, options, [&ctx](double) { ctx.heartbeat(); });
  const int mix_rate = mix.sample_rate;
  const double duration = mix.duration_seconds();
  mix = {};  // the stems are what is left to write; the mix's memory goes first
  check_stop(ctx);

  const auto dir =
      std::filesystem::temp_directory_path() / fmt::format("yw-stems-{}-{}", ::getpid(), ctx.id);
  std::filesystem::create_directories(dir);
  nlohmann::json uris = nlohmann::json::object();
  try {
    for (auto& stem : stems) {
      const auto file = dir / fmt::format("{}.{}", stem.name, extension(format));
      models::prevent_clip(stem.audio, clip);
      write_audio_file(file, format, stem.audio.samples.data(), stem.audio.channels,
                       stem.audio.frames, stem.audio.sample_rate, args.bits);
      uris[stem.name] =
          put_artifact(file, fmt::format("{}/{}", key, file.filename().string()), config);
      ctx.heartbeat();
    }
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    throw;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);

  nlohmann::json out;
  out["record_id"] = args.record_id;
  out["model"] = separator->name();
  // The stems' rate: the mix's, or the model's when output_rate is "model".
  out["sample_rate"] = stems.empty() ? mix_rate : stems.front().audio.sample_rate;
  out["duration_seconds"] = duration;
  out["stems"] = std::move(uris);
  return out;
}

}  // namespace

void open_configured_separator(const WorkerConfig& config, const Device& device) {
  try {
    (void)shared_separator(config, device);
  } catch (const Error& e) {
    throw ConfigError(fmt::format("YW_MODEL (--model): {}", e.what()));
  }
}

void register_separation_handlers(HandlerRegistry& registry) {
  registry.add("separate_stems", separate_stems);
}

}  // namespace yw::worker
