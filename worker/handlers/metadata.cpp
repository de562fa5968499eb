// `extract_metadata` (design.md §2): format, tags, loudness, ReplayGain, SHA-256 and a waveform
// JSON artifact for one audio URI. Runs on the CPU; never touches the batcher or a device.
#include <fmt/format.h>

#include "yw/common/error.hpp"
#include "yw/worker/handler.hpp"
#include "yw/worker/job_args.hpp"
#include "yw/worker/metadata.hpp"
#include "yw/worker/storage.hpp"

namespace yw::worker {
namespace {

nlohmann::json extract_metadata(const nlohmann::json& data, JobContext& ctx) {
  const MetadataArgs args = MetadataArgs::from_json(data);
  YW_CHECK(ctx.config != nullptr, "extract_metadata: no configuration");

  const LocalInput input = fetch_input(args.audio, *ctx.config);
  ctx.heartbeat();
  const MetadataResult result = analyze_audio_file(input.path(), {}, ctx.stop);
  ctx.heartbeat();
  // The waveform is stored before the job completes (design.md §2); a retry overwrites it.
  const std::string key = fmt::format("{}/waveform.json", artifact_prefix(args.record_id, ctx.id));
  const std::string uri = put_artifact_bytes(to_json(result.waveform).dump(), key, *ctx.config);
  nlohmann::json out = to_json(result, uri);
  out["record_id"] = args.record_id;
  return out;
}

}  // namespace

void register_metadata_handlers(HandlerRegistry& registry) {
  registry.add("extract_metadata", &extract_metadata);
}

}  // namespace yw::worker
