#pragma once
// Typed job data, one struct per queue (design.md §2, style.md habit 8), each parsed by one
// from_json. Unknown fields are ignored; a missing or mistyped required field throws
// yw::InputError whose message starts with the field's name ("record_id: required",
// "audio: expected a URI string, got number"), which fails the job terminally.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace yw::worker {

// A record id as the API sent it (number or non-empty string); null when absent.
using RecordId = nlohmann::json;

struct FingerprintArgs {
  static constexpr std::string_view kQueue = "fingerprint_audio";
  std::string audio;              // URI
  RecordId record_id;             // null when absent
  double length_seconds = 120.0;  // 0 = whole file
  bool raw = false;
  static FingerprintArgs from_json(const nlohmann::json& data);
};

struct SeparateArgs {
  static constexpr std::string_view kQueue = "separate_stems";
  std::string audio;
  RecordId record_id;
  std::string model;            // empty: the worker's configured model
  std::string format = "flac";  // wav or flac
  // Demucs' options (models::SeparateOptions): shifts (0..20), seed, overlap [0, 0.99],
  // segment (seconds; 0 = the model's window, which also bounds it).
  int shifts = 0;
  uint64_t seed = 0;
  double overlap = 0.25;
  double segment = 0.0;
  // Output conventions: clip_mode rescale | clamp | none (Demucs' prevent_clip); the sample
  // format from bit_depth (16 | 24) or float32 (wav only), resolved to bits: 0 = the format's
  // default (wav 32-bit float, flac 24); output_rate "input" (default) or "model".
  std::string clip_mode = "rescale";
  int bits = 0;
  bool model_rate = false;
  static SeparateArgs from_json(const nlohmann::json& data);
};

struct MetadataArgs {
  static constexpr std::string_view kQueue = "extract_metadata";
  std::string audio;
  RecordId record_id;
  static MetadataArgs from_json(const nlohmann::json& data);
};

struct RecordArgs {
  static constexpr std::string_view kQueue = "process_new_record";
  RecordId record_id;        // required
  std::string record_type;   // may be empty
  nlohmann::json metadata;   // object or null
  std::string audio;         // data.audio or metadata.audio_url; empty when neither
  std::string storage_path;  // metadata.storage_path (bucket-relative), when no URI was given
  bool metadata_task = true, fingerprint_task = true, stems_task = true;
  static RecordArgs from_json(const nlohmann::json& data);
};

// Field helpers for handlers with fields of their own. Each throws yw::InputError naming `field`.
namespace args {
// `data` itself must be an object.
void require_object(const nlohmann::json& data);
// A URI string with a scheme the worker can read (file, http, https, supabase).
std::string required_uri(const nlohmann::json& data, std::string_view field);
// `label` names the field in messages when it is nested ("metadata.audio_url"); default `field`.
std::optional<std::string> optional_uri(const nlohmann::json& data, std::string_view field,
                                        std::string_view label = {});
RecordId record_id(const nlohmann::json& data, bool required);
std::optional<double> optional_number(const nlohmann::json& data, std::string_view field,
                                      double min, double max);
std::optional<bool> optional_bool(const nlohmann::json& data, std::string_view field);
std::optional<std::string> optional_choice(const nlohmann::json& data, std::string_view field,
                                           const std::vector<std::string_view>& choices);
std::optional<std::string> optional_string(const nlohmann::json& data, std::string_view field,
                                           std::string_view label = {});
}  // namespace args

}  // namespace yw::worker
