// `extract_metadata` (design.md §2): format, tags, loudness, ReplayGain, SHA-256 and a waveform
// JSON artifact for one audio URI. Runs on the CPU; never touches the batcher or a device.
#include <fmt/format.h>

#include "yw/common/error.hpp"
#include "yw/worker/handler.hpp"
#include "yw/worker/metadata.hpp"
#include "yw/worker/storage.hpp"

namespace yw::worker {
namespace {

std::string json_type(const nlohmann::json& v) {
  return v.type_name();
}

nlohmann::json extract_metadata(const nlohmann::json& data, JobContext& ctx) {
  YW_CHECK_INPUT(data.is_object(), "data: expected a JSON object, got {}", json_type(data));
  YW_CHECK_INPUT(data.contains("audio"), "audio: required");
  const auto& audio = data.at("audio");
  YW_CHECK_INPUT(audio.is_string(), "audio: expected a URI string, got {}", json_type(audio));
  nlohmann::json record_id = nullptr;
  std::string record_key;
  if (data.contains("record_id") && !data.at("record_id").is_null()) {
    record_id = data.at("record_id");
    if (record_id.is_string()) {
      record_key = record_id.get<std::string>();
    } else if (record_id.is_number()) {
      record_key = record_id.dump();
    } else {
      YW_THROW_INPUT("record_id: expected a number or a string, got {}", json_type(record_id));
    }
  }
  YW_CHECK(ctx.config != nullptr, "extract_metadata: no configuration");

  const LocalInput input = fetch_input(audio.get<std::string>(), *ctx.config);
  ctx.heartbeat();
  const MetadataResult result = analyze_audio_file(input.path(), {}, ctx.stop);
  ctx.heartbeat();
  // The waveform is stored before the job completes (design.md §2); a retry overwrites it.
  const std::string key = fmt::format("{}/waveform.json", artifact_prefix(record_key, ctx.id));
  const std::string uri = put_artifact_bytes(to_json(result.waveform).dump(), key, *ctx.config);
  nlohmann::json out = to_json(result, uri);
  out["record_id"] = record_id;
  return out;
}

}  // namespace

void register_metadata_handlers(HandlerRegistry& registry) {
  registry.add("extract_metadata", &extract_metadata);
}

}  // namespace yw::worker
