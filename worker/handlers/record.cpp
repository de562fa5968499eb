// `process_new_record` (design.md §2): validates the record, finds its audio and fans out one
// child job per task. The children go in JobContext::children, which the executor inserts in the
// transaction that completes this job: all or nothing.
//
// Retries never create a second set of children: each child's pg-boss id is derived from this
// job's id and the task (a name-based UUID), and pg-boss inserts with ON CONFLICT DO NOTHING, so a
// repeated insert of the same child is a no-op. The ids are known before the insert, which is how
// the output can name them. The singletonKey carries the same derivation for readers of the table.
#include <openssl/evp.h>

#include <array>
#include <string>

#include <fmt/format.h>

#include "yw/common/error.hpp"
#include "yw/worker/handler.hpp"
#include "yw/worker/storage.hpp"

namespace yw::worker {
namespace {

struct Task {
  const char* name;   // in `tasks` and in the output's `jobs`
  const char* queue;  // the child queue
};
constexpr std::array<Task, 3> kTasks = {{{"metadata", "extract_metadata"},
                                         {"fingerprint", "fingerprint_audio"},
                                         {"stems", "separate_stems"}}};

// A UUID (version 5 layout, SHA-256 instead of SHA-1) naming `task` of parent job `parent_id`.
std::string child_job_id(std::string_view parent_id, std::string_view task) {
  const std::string name = fmt::format("yesod-worker/process_new_record/{}/{}", parent_id, task);
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  YW_CHECK(EVP_Digest(name.data(), name.size(), md.data(), &len, EVP_sha256(), nullptr) == 1,
           "process_new_record: digest failed");
  md[6] = static_cast<unsigned char>((md[6] & 0x0F) | 0x50);
  md[8] = static_cast<unsigned char>((md[8] & 0x3F) | 0x80);
  std::string hex;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) hex += '-';
    hex += fmt::format("{:02x}", md[static_cast<size_t>(i)]);
  }
  return hex;
}

bool known_scheme(std::string_view uri) {
  return uri.starts_with("file://") || uri.starts_with("http://") || uri.starts_with("https://") ||
         uri.starts_with("supabase://");
}

// The audio URI (data.audio, else metadata.audio_url, else metadata.storage_path in the
// configured bucket), or "" when the record has none. Mistyped fields are InputErrors.
std::string find_audio(const nlohmann::json& data, const WorkerConfig& config) {
  const auto check_uri = [](const std::string& uri, std::string_view field) {
    YW_CHECK_INPUT(!uri.empty(), "{}: empty URI", field);
    if (!known_scheme(uri)) {
      const auto colon = uri.find(':');
      YW_THROW_INPUT(
          "{}: unsupported URI scheme '{}' (expected file://, http(s):// or supabase://)", field,
          colon == std::string::npos ? std::string("none") : uri.substr(0, colon));
    }
    return uri;
  };
  if (data.contains("audio") && !data.at("audio").is_null()) {
    const auto& a = data.at("audio");
    YW_CHECK_INPUT(a.is_string(), "audio: expected a URI string, got {}", a.type_name());
    return check_uri(a.get<std::string>(), "audio");
  }
  if (!data.contains("metadata") || data.at("metadata").is_null()) return "";
  const auto& m = data.at("metadata");
  YW_CHECK_INPUT(m.is_object(), "metadata: expected an object, got {}", m.type_name());
  if (m.contains("audio_url") && !m.at("audio_url").is_null()) {
    const auto& a = m.at("audio_url");
    YW_CHECK_INPUT(a.is_string(), "metadata.audio_url: expected a URI string, got {}",
                   a.type_name());
    return check_uri(a.get<std::string>(), "metadata.audio_url");
  }
  if (m.contains("storage_path") && !m.at("storage_path").is_null()) {
    const auto& p = m.at("storage_path");
    YW_CHECK_INPUT(p.is_string() && !p.get<std::string>().empty(),
                   "metadata.storage_path: expected a non-empty string, got {}", p.type_name());
    // The bucket is this worker's configuration, not the job's: a missing one is retryable.
    YW_CHECK(!config.storage_bucket.empty(),
             "metadata.storage_path needs YW_STORAGE_BUCKET to be set on this worker");
    std::string path = p.get<std::string>();
    while (path.starts_with('/'))
      path.erase(0, 1);
    return fmt::format("supabase://{}/{}", config.storage_bucket, path);
  }
  return "";
}

nlohmann::json process_new_record(const nlohmann::json& data, JobContext& ctx) {
  YW_CHECK_INPUT(data.is_object(), "data: expected a JSON object, got {}", data.type_name());
  YW_CHECK_INPUT(data.contains("record_id") && !data.at("record_id").is_null(),
                 "record_id: required");
  const nlohmann::json& record_id = data.at("record_id");
  YW_CHECK_INPUT(
      record_id.is_number() || (record_id.is_string() && !record_id.get<std::string>().empty()),
      "record_id: expected a number or a non-empty string, got {}", record_id.type_name());
  if (data.contains("record_type") && !data.at("record_type").is_null()) {
    YW_CHECK_INPUT(data.at("record_type").is_string(), "record_type: expected a string, got {}",
                   data.at("record_type").type_name());
  }
  std::array<bool, kTasks.size()> wanted{true, true, true};
  if (data.contains("tasks") && !data.at("tasks").is_null()) {
    const auto& tasks = data.at("tasks");
    YW_CHECK_INPUT(tasks.is_array(), "tasks: expected an array of task names, got {}",
                   tasks.type_name());
    wanted.fill(false);
    for (const auto& t : tasks) {
      YW_CHECK_INPUT(t.is_string(), "tasks: expected task names (strings), got {}", t.type_name());
      bool known = false;
      for (size_t i = 0; i < kTasks.size(); ++i) {
        if (t.get<std::string>() == kTasks[i].name) wanted[i] = known = true;
      }
      YW_CHECK_INPUT(known, "tasks: unknown task '{}' (expected metadata, fingerprint, stems)",
                     t.get<std::string>());
    }
  }
  YW_CHECK(ctx.config != nullptr, "process_new_record: no configuration");
  const std::string audio = find_audio(data, *ctx.config);
  if (audio.empty()) {
    return {{"record_id", record_id},
            {"skipped", "no audio (none of audio, metadata.audio_url, metadata.storage_path)"}};
  }
  YW_CHECK(ctx.children != nullptr, "process_new_record: this executor cannot send child jobs");

  nlohmann::json jobs = nlohmann::json::object();
  for (size_t i = 0; i < kTasks.size(); ++i) {
    if (!wanted[i]) continue;
    const std::string id = child_job_id(ctx.id, kTasks[i].name);
    JobContext::ChildJob child;
    child.queue = kTasks[i].queue;
    child.data = {{"audio", audio}, {"record_id", record_id}};
    child.options = {{"id", id}, {"singletonKey", fmt::format("{}:{}", ctx.id, kTasks[i].name)}};
    ctx.children->push_back(std::move(child));
    jobs[kTasks[i].name] = id;
  }
  return {{"record_id", record_id}, {"jobs", jobs}};
}

}  // namespace

void register_record_handlers(HandlerRegistry& registry) {
  registry.add("process_new_record", &process_new_record);
}

}  // namespace yw::worker
