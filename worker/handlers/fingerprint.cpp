// `fingerprint_audio` (design.md §2): the Chromaprint fingerprint fpcalc prints for one audio URI.
// data {audio (required), record_id, length_seconds = 120 (0 = whole file), raw = false}
// output {record_id, fingerprint, algorithm: 2, duration_seconds, items (when raw)}
// Decoding and fpcalc's conversion run on the job's thread; the core runs in the device's
// FingerprintBatcher, so concurrent jobs share one batched cuFFT call on a GPU (or one CPU twin
// call in CPU mode).
#include <chrono>

#include <fmt/format.h>

#include "yw/common/error.hpp"
#include "yw/kernels/fingerprint.hpp"
#include "yw/kernels/fpcalc_resample.hpp"
#include "yw/worker/fingerprint_batcher.hpp"
#include "yw/worker/handler.hpp"
#include "yw/worker/storage.hpp"

namespace yw::worker {
namespace {

nlohmann::json fingerprint_audio(const nlohmann::json& data, JobContext& ctx) {
  YW_CHECK_INPUT(data.is_object(), "data: expected a JSON object, got {}", data.type_name());
  YW_CHECK_INPUT(data.contains("audio"), "audio: required");
  const auto& audio = data.at("audio");
  YW_CHECK_INPUT(audio.is_string(), "audio: expected a URI string, got {}", audio.type_name());
  nlohmann::json record_id = nullptr;
  if (data.contains("record_id") && !data.at("record_id").is_null()) {
    record_id = data.at("record_id");
    YW_CHECK_INPUT(record_id.is_string() || record_id.is_number(),
                   "record_id: expected a number or a string, got {}", record_id.type_name());
  }
  double length = 120.0;
  if (data.contains("length_seconds") && !data.at("length_seconds").is_null()) {
    const auto& v = data.at("length_seconds");
    YW_CHECK_INPUT(v.is_number() && v.get<double>() >= 0.0,
                   "length_seconds: expected a number >= 0 (0 = whole file), got {}", v.dump());
    length = v.get<double>();
  }
  bool raw = false;
  if (data.contains("raw") && !data.at("raw").is_null()) {
    const auto& v = data.at("raw");
    YW_CHECK_INPUT(v.is_boolean(), "raw: expected true or false, got {}", v.dump());
    raw = v.get<bool>();
  }
  YW_CHECK(ctx.config != nullptr, "fingerprint_audio: no configuration");

  const std::string uri = audio.get<std::string>();
  const LocalInput input = fetch_input(uri, *ctx.config);
  ctx.heartbeat();
  if (ctx.stop.stop_requested()) YW_THROW("fingerprint_audio: stopped before decoding");
  FpcalcSignal signal;
  try {
    signal = fpcalc_signal(input.path(), length);
  } catch (const InputError& e) {
    // The decoder names the local copy; the user knows the URI.
    throw InputError(fmt::format("audio: {} ({})", e.what(), uri));
  }
  ctx.heartbeat();
  YW_CHECK_INPUT(signal.samples.size() >= static_cast<std::size_t>(kChromaprintMinSamples),
                 "audio: empty fingerprint: {} has less than {:.2f} s of audio to fingerprint", uri,
                 static_cast<double>(kChromaprintMinSamples) / kFpcalcSampleRate);

  if (ctx.stop.stop_requested()) YW_THROW("fingerprint_audio: stopped before fingerprinting");
  BatchPolicy policy;
  policy.max_batch = ctx.config->batch_max;
  policy.max_queue_delay = std::chrono::milliseconds(ctx.config->batch_delay_ms);
  const std::vector<std::uint32_t> items =
      FingerprintBatcher::for_device(ctx.device, policy).fingerprint(signal.samples);
  ctx.heartbeat();

  nlohmann::json out;
  out["record_id"] = record_id;
  out["fingerprint"] = compress_fingerprint(items);
  out["algorithm"] = kChromaprintAlgorithm;
  out["duration_seconds"] = signal.duration_seconds;
  if (raw) out["items"] = items;
  return out;
}

}  // namespace

void register_fingerprint_handlers(HandlerRegistry& registry) {
  registry.add("fingerprint_audio", &fingerprint_audio);
}

}  // namespace yw::worker
