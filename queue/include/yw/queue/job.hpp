#pragma once
// Plain values the pg-boss client hands out and takes back (pgboss-protocol.md §2, §4.5, §8).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace yw::queue {

// The queue policies pg-boss 12.38 implements; the client refuses any other (style.md habit 10).
inline constexpr const char* kPolicies[] = {"standard", "short",     "singleton",
                                            "stately",  "exclusive", "key_strict_fifo"};

// The columns of a `queue` row a worker needs.
struct QueueInfo {
  std::string name;
  std::string policy;
  std::string table_name;  // physical table: job_common or j<sha224 hex>
  bool notify = false;
  int retry_limit = 2;
  int retry_delay = 0;
  bool retry_backoff = false;
  std::optional<int> retry_delay_max;
  int expire_seconds = 900;
  int retention_seconds = 1'209'600;
  int deletion_seconds = 604'800;
  std::optional<std::string> dead_letter;
  std::optional<int> heartbeat_seconds;
  bool partition = false;
};

// A claimed job: one attempt. `retry_count` names the attempt and fences every settle (§4.6).
struct Job {
  std::string queue;
  std::string id;
  nlohmann::json data;  // null when the job has no data
  int retry_count = 0;
  int expire_seconds = 900;
  std::optional<int> heartbeat_seconds;
  std::optional<std::string> group_id;
  std::optional<std::string> group_tier;
};

// pg-boss's fetch option groupConcurrency (§4.4): a job with a group_id is claimed only while
// fewer than its limit of that queue's jobs of the same group are active, counted across every
// worker. The limit is tiers[group_tier] when the job's tier is listed, else `default_limit`.
// Jobs without a group are never limited. Every limit is at least 1.
struct GroupConcurrency {
  int default_limit = 1;
  std::map<std::string, int> tiers;
  bool operator==(const GroupConcurrency&) const = default;
};

// One settle: the attempt and the output stored with it (already in pg-boss's stored shape; see
// stored_output / error_output). A null output is stored as SQL NULL.
struct Settle {
  std::string id;
  int retry_count = 0;
  nlohmann::json output;
};

// One job to send: `data` plus pg-boss send options with pg-boss's own camelCase keys
// (priority, startAfter (seconds number, interval text or ISO time), singletonKey,
// singletonSeconds, singletonOffset, retryLimit, retryDelay, retryBackoff, retryDelayMax,
// expireInSeconds, deleteAfterSeconds, retentionSeconds, deadLetter, heartbeatSeconds, groupId,
// groupTier, id). Unknown keys are refused with an InputError naming the key.
struct SendJob {
  nlohmann::json data;
  nlohmann::json options = nlohmann::json::object();
};

// A statement a handler adds to the transaction that completes its job: it runs after the
// completion (only when the claim still held) and before the commit, with `param` bound as $1,
// so its effect and the completion commit together or not at all (e.g. the catalogue row of a
// fingerprint_audio job).
struct TxStatement {
  std::string sql;
  std::string param;
};

// What complete() stores for a handler's result, as work() does (§5): null → SQL NULL, an object
// as is, anything else wrapped as {"value": it}.
nlohmann::json stored_output(const nlohmann::json& result);
// pg-boss's serialized-Error shape for a failure: {"name", "message", "stack"}.
nlohmann::json error_output(std::string_view name, std::string_view message,
                            std::string_view stack);

}  // namespace yw::queue
