// `fingerprint_audio` (design.md §2): the Chromaprint fingerprint fpcalc prints for one audio URI.
// data {audio (required), record_id, length_seconds = 120 (0 = whole file), raw = false,
//       match = {options of match_fingerprint} | false, catalogue = true}
// output {record_id, fingerprint, algorithm: 2, duration_seconds, items (when raw),
//         matches (when the worker has a catalogue and match is not false)}
// With a catalogue (catalogue.hpp), the fingerprint is matched against it (the record's own
// earlier row excluded) and then upserted into it by the transaction that completes the job:
// a failed or retried attempt adds nothing, and a repeated job replaces its record's row.
// The catalogue key is record_id (as text), or the job's id when the data has none.
// Decoding and fpcalc's conversion run on the job's thread; the core runs in the device's
// FingerprintBatcher, so concurrent jobs share one batched cuFFT call on a GPU (or one CPU twin
// call in CPU mode).
#include <chrono>

#include <fmt/format.h>

#include "yw/common/error.hpp"
#include "yw/kernels/fingerprint.hpp"
#include "yw/kernels/fpcalc_resample.hpp"
#include "yw/worker/catalogue.hpp"
#include "yw/worker/fingerprint_batcher.hpp"
#include "yw/worker/handler.hpp"
#include "yw/worker/job_args.hpp"
#include "yw/worker/match_batcher.hpp"
#include "yw/worker/storage.hpp"

namespace yw::worker {
namespace {

nlohmann::json fingerprint_audio(const nlohmann::json& data, JobContext& ctx) {
  const FingerprintArgs args = FingerprintArgs::from_json(data);
  const double length = args.length_seconds;
  YW_CHECK(ctx.config != nullptr, "fingerprint_audio: no configuration");

  const std::string& uri = args.audio;
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
  out["record_id"] = args.record_id;
  out["fingerprint"] = compress_fingerprint(items);
  out["algorithm"] = kChromaprintAlgorithm;
  out["duration_seconds"] = signal.duration_seconds;
  if (args.raw) out["items"] = items;

  // Matching and cataloguing (off without a database, with YW_CATALOGUE_SCHEMA=off, or per job).
  const auto match_it = data.find("match");
  const bool match = match_it == data.end() || !match_it->is_boolean() || match_it->get<bool>();
  const bool catalogue = args::optional_bool(data, "catalogue").value_or(true);
  const MatchOptions base = match && match_it != data.end() && !match_it->is_boolean()
                                ? match_options_from_json(*match_it, "match.")
                                : MatchOptions{};
  if (!match && !catalogue) return out;
  Catalogue* cat = Catalogue::shared(*ctx.config);
  if (cat == nullptr) return out;
  std::string key = args.record_id.is_string()   ? args.record_id.get<std::string>()
                    : args.record_id.is_number() ? args.record_id.dump()
                                                 : ctx.id;
  if (match) {
    MatchOptions o = base;
    o.exclude = key;
    out["matches"] = matches_json(
        cat->match(items, signal.duration_seconds, o, bit_error_fn(ctx.device, policy)));
  }
  if (catalogue && !key.empty() && ctx.statements != nullptr) {
    ctx.statements->push_back(
        catalogue_upsert_statement(cat->schema(), {key, items, signal.duration_seconds, ctx.id}));
    out["catalogue_record_id"] = key;
  }
  return out;
}

}  // namespace

void register_fingerprint_handlers(HandlerRegistry& registry) {
  registry.add("fingerprint_audio", &fingerprint_audio);
}

}  // namespace yw::worker
