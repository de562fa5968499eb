#include "yw/worker/job_args.hpp"

#include <fmt/format.h>

#include "yw/common/error.hpp"

namespace yw::worker {
namespace args {
namespace {

// The field when present and not null, else nullptr.
const nlohmann::json* find(const nlohmann::json& data, std::string_view field) {
  const auto it = data.find(field);
  return it == data.end() || it->is_null() ? nullptr : &*it;
}

std::string type_of(const nlohmann::json& v) {
  return v.type_name();
}

bool known_scheme(std::string_view uri) {
  return uri.starts_with("file://") || uri.starts_with("http://") || uri.starts_with("https://") ||
         uri.starts_with("supabase://");
}

}  // namespace

void require_object(const nlohmann::json& data) {
  YW_CHECK_INPUT(data.is_object(), "data: expected a JSON object, got {}", type_of(data));
}

std::optional<std::string> optional_uri(const nlohmann::json& data, std::string_view key,
                                        std::string_view label) {
  const std::string_view field = label.empty() ? key : label;
  const auto* v = find(data, key);
  if (v == nullptr) return std::nullopt;
  YW_CHECK_INPUT(v->is_string(), "{}: expected a URI string, got {}", field, type_of(*v));
  const auto& uri = v->get_ref<const std::string&>();
  YW_CHECK_INPUT(!uri.empty(), "{}: empty URI", field);
  if (!known_scheme(uri)) {
    const auto colon = uri.find("://");
    YW_THROW_INPUT("{}: unsupported URI scheme '{}' (expected file://, http(s):// or supabase://)",
                   field, colon == std::string::npos ? std::string("none") : uri.substr(0, colon));
  }
  return uri;
}

std::string required_uri(const nlohmann::json& data, std::string_view field) {
  auto uri = optional_uri(data, field);
  YW_CHECK_INPUT(uri.has_value(), "{}: required", field);
  return *uri;
}

RecordId record_id(const nlohmann::json& data, bool required) {
  const auto* v = find(data, "record_id");
  if (v == nullptr) {
    YW_CHECK_INPUT(!required, "record_id: required");
    return nullptr;
  }
  YW_CHECK_INPUT(v->is_number() || (v->is_string() && !v->get_ref<const std::string&>().empty()),
                 "record_id: expected a number or a non-empty string, got {}", type_of(*v));
  return *v;
}

std::optional<double> optional_number(const nlohmann::json& data, std::string_view field,
                                      double min, double max) {
  const auto* v = find(data, field);
  if (v == nullptr) return std::nullopt;
  YW_CHECK_INPUT(v->is_number(), "{}: expected a number, got {}", field, type_of(*v));
  const double x = v->get<double>();
  YW_CHECK_INPUT(x >= min && x <= max, "{}: expected a number from {} to {}, got {}", field, min,
                 max, v->dump());
  return x;
}

std::optional<bool> optional_bool(const nlohmann::json& data, std::string_view field) {
  const auto* v = find(data, field);
  if (v == nullptr) return std::nullopt;
  YW_CHECK_INPUT(v->is_boolean(), "{}: expected true or false, got {}", field, type_of(*v));
  return v->get<bool>();
}

std::optional<std::string> optional_string(const nlohmann::json& data, std::string_view key,
                                           std::string_view label) {
  const std::string_view field = label.empty() ? key : label;
  const auto* v = find(data, key);
  if (v == nullptr) return std::nullopt;
  YW_CHECK_INPUT(v->is_string(), "{}: expected a string, got {}", field, type_of(*v));
  return v->get<std::string>();
}

std::optional<std::string> optional_choice(const nlohmann::json& data, std::string_view field,
                                           const std::vector<std::string_view>& choices) {
  auto s = optional_string(data, field);
  if (!s) return s;
  for (const auto c : choices)
    if (*s == c) return s;
  std::string list;
  for (const auto c : choices)
    list += (list.empty() ? "" : ", ") + std::string(c);
  YW_THROW_INPUT("{}: expected one of {}, got '{}'", field, list, *s);
}

}  // namespace args

FingerprintArgs FingerprintArgs::from_json(const nlohmann::json& data) {
  args::require_object(data);
  FingerprintArgs a;
  a.audio = args::required_uri(data, "audio");
  a.record_id = args::record_id(data, false);
  // fpcalc's -length is an integer number of seconds; a day bounds any real upload.
  a.length_seconds = args::optional_number(data, "length_seconds", 0, 86'400).value_or(120.0);
  a.raw = args::optional_bool(data, "raw").value_or(false);
  return a;
}

SeparateArgs SeparateArgs::from_json(const nlohmann::json& data) {
  args::require_object(data);
  SeparateArgs a;
  a.audio = args::required_uri(data, "audio");
  a.record_id = args::record_id(data, false);
  a.model = args::optional_string(data, "model").value_or("");
  a.format = args::optional_choice(data, "format", {"wav", "flac"}).value_or("flac");
  const auto whole = [&](std::string_view field, double min, double max) -> std::optional<double> {
    const auto v = args::optional_number(data, field, min, max);
    YW_CHECK_INPUT(!v || *v == static_cast<double>(static_cast<int64_t>(*v)),
                   "{}: expected a whole number, got {}", field, *v);
    return v;
  };
  a.shifts = static_cast<int>(whole("shifts", 0, 20).value_or(0));
  // Up to 2^53, so that any seed survives a JSON number exactly.
  a.seed = static_cast<uint64_t>(whole("seed", 0, 9007199254740992.0).value_or(0));
  a.overlap = args::optional_number(data, "overlap", 0, 0.99).value_or(0.25);
  a.segment = args::optional_number(data, "segment", 0.1, 600).value_or(0.0);
  a.clip_mode =
      args::optional_choice(data, "clip_mode", {"rescale", "clamp", "none"}).value_or("rescale");
  const auto depth = whole("bit_depth", 16, 24);
  YW_CHECK_INPUT(!depth || *depth == 16 || *depth == 24, "bit_depth: expected 16 or 24, got {}",
                 *depth);
  const bool float32 = args::optional_bool(data, "float32").value_or(false);
  YW_CHECK_INPUT(!(float32 && depth), "float32: cannot be combined with bit_depth");
  YW_CHECK_INPUT(!float32 || a.format == "wav",
                 "float32: FLAC stores integer samples only; use format 'wav'");
  a.bits = float32 ? 32 : depth ? static_cast<int>(*depth) : 0;
  a.model_rate =
      args::optional_choice(data, "output_rate", {"input", "model"}).value_or("input") == "model";
  return a;
}

MetadataArgs MetadataArgs::from_json(const nlohmann::json& data) {
  args::require_object(data);
  MetadataArgs a;
  a.audio = args::required_uri(data, "audio");
  a.record_id = args::record_id(data, false);
  return a;
}

RecordArgs RecordArgs::from_json(const nlohmann::json& data) {
  args::require_object(data);
  RecordArgs a;
  a.record_id = args::record_id(data, true);
  a.record_type = args::optional_string(data, "record_type").value_or("");
  if (const auto it = data.find("metadata"); it != data.end() && !it->is_null()) {
    YW_CHECK_INPUT(it->is_object(), "metadata: expected an object, got {}", it->type_name());
    a.metadata = *it;
  }
  if (auto uri = args::optional_uri(data, "audio")) {
    a.audio = *uri;
  } else if (a.metadata.is_object()) {
    if (auto url = args::optional_uri(a.metadata, "audio_url", "metadata.audio_url")) {
      a.audio = *url;
    } else if (auto path =
                   args::optional_string(a.metadata, "storage_path", "metadata.storage_path")) {
      YW_CHECK_INPUT(!path->empty(), "metadata.storage_path: empty path");
      a.storage_path = *path;
    }
  }
  if (const auto it = data.find("tasks"); it != data.end() && !it->is_null()) {
    YW_CHECK_INPUT(it->is_array(), "tasks: expected an array of task names, got {}",
                   it->type_name());
    a.metadata_task = a.fingerprint_task = a.stems_task = false;
    for (const auto& t : *it) {
      YW_CHECK_INPUT(t.is_string(), "tasks: expected task names (strings), got {}", t.type_name());
      const auto& name = t.get_ref<const std::string&>();
      if (name == "metadata")
        a.metadata_task = true;
      else if (name == "fingerprint")
        a.fingerprint_task = true;
      else if (name == "stems")
        a.stems_task = true;
      else
        YW_THROW_INPUT("tasks: unknown task '{}' (expected metadata, fingerprint, stems)", name);
    }
  }
  return a;
}

}  // namespace yw::worker
