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
#include "yw/worker/job_args.hpp"

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

nlohmann::json process_new_record(const nlohmann::json& data, JobContext& ctx) {
  const RecordArgs args = RecordArgs::from_json(data);
  const nlohmann::json& record_id = args.record_id;
  const std::array<bool, kTasks.size()> wanted{args.metadata_task, args.fingerprint_task,
                                               args.stems_task};
  YW_CHECK(ctx.config != nullptr, "process_new_record: no configuration");
  std::string audio = args.audio;
  if (audio.empty() && !args.storage_path.empty()) {
    // The bucket is this worker's configuration, not the job's: a missing one is retryable.
    YW_CHECK(!ctx.config->storage_bucket.empty(),
             "metadata.storage_path needs YW_STORAGE_BUCKET to be set on this worker");
    std::string path = args.storage_path;
    while (path.starts_with('/'))
      path.erase(0, 1);
    audio = fmt::format("supabase://{}/{}", ctx.config->storage_bucket, path);
  }
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
