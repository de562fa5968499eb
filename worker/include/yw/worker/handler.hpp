#pragma once
// Handlers: one per queue (style.md habit 8). A handler turns a job's `data` into its `output`.
//
// Contract:
//  - It runs on a worker thread; several may run at once (up to the queue's concurrency).
//  - It returns the job's output (a JSON object) when the job succeeded.
//  - It throws yw::InputError when the job can never succeed (a missing or mistyped field, a
//    corrupt file): the job fails terminally, with the message shown to the user. Anything else it
//    throws is a retryable failure; pg-boss's retry rules decide what happens next.
//  - It checks `ctx.stop` between stages: a stop request means the job's time is up (expiry or
//    shutdown) and it should throw (any exception) as soon as it can.
#include <functional>
#include <map>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "yw/kernels/device.hpp"
#include "yw/queue/job.hpp"
#include "yw/worker/config.hpp"

namespace yw::worker {

struct JobContext {
  std::string queue;
  std::string id;
  int retry_count = 0;
  std::stop_token stop;
  const WorkerConfig* config = nullptr;
  Device device;
  // Tells the queue the job is alive (pg-boss heartbeat); safe to call often, it is rate limited.
  std::function<void()> heartbeat = [] {};
  // Sends child jobs in the same transaction that completes this job (process_new_record): the
  // handler records them here and the executor sends them with the completion. Each entry is
  // {queue, data, options}.
  struct ChildJob {
    std::string queue;
    nlohmann::json data;
    nlohmann::json options;  // pg-boss send options: singletonKey, priority, startAfter, ...
  };
  std::vector<ChildJob>* children = nullptr;
  // SQL that commits with this job's completion (and only with it), e.g. fingerprint_audio's
  // catalogue row; null outside the executor (CLI, tests), where there is no completion.
  std::vector<queue::TxStatement>* statements = nullptr;
};

using HandlerFn = std::function<nlohmann::json(const nlohmann::json& data, JobContext& ctx)>;

class HandlerRegistry {
 public:
  // Registers the handler for `queue`; a second registration for the same queue throws.
  void add(std::string queue, HandlerFn handler);
  const HandlerFn* find(std::string_view queue) const;
  std::vector<std::string> queues() const;

 private:
  std::map<std::string, HandlerFn, std::less<>> handlers_;
};

// Registers every handler this build has (worker/handlers/registry.cpp).
void register_all_handlers(HandlerRegistry& registry);

// One registration function per handler file.
void register_fingerprint_handlers(HandlerRegistry& registry);
void register_separation_handlers(HandlerRegistry& registry);
void register_metadata_handlers(HandlerRegistry& registry);
void register_record_handlers(HandlerRegistry& registry);
void register_match_handlers(HandlerRegistry& registry);

// Opens the separator separate_stems jobs will share (YW_MODEL, else the built-in one) now, so a
// missing or contract-breaking model stops `run` at start (yw::ConfigError) instead of failing
// every job.
void open_configured_separator(const WorkerConfig& config, const Device& device);

}  // namespace yw::worker
