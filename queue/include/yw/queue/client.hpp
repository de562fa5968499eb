#pragma once
// A pg-boss 12.38 (schema 46) client: the statements pg-boss's own Node worker runs, with its
// semantics, parameterised by schema (pgboss-protocol.md; SQL in queue/pgboss/sql.cpp).
//
// Thread-safe: every call leases its own connection from the pool. Errors: pqxx exceptions
// propagate, except that a lost connection is rethrown as yw::Error after the connection is
// dropped (is_connection_error() recognises both); callers retry with backoff. Settles are fenced
// on (id, retry_count) + state = 'active', so repeating one after a lost reply is harmless: it
// changes nothing and reports the job as not settled.
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "yw/queue/job.hpp"
#include "yw/queue/pool.hpp"

namespace yw::queue {

// True for a dropped or unreachable server (pqxx::broken_connection, a commit left in doubt by a
// lost connection, SQLSTATE classes 08 and 57P0x): worth retrying on a fresh connection.
bool is_connection_error(const std::exception& e);

// Child jobs sent in the same transaction as a completion: {queue, job}.
using ChildJobs = std::vector<std::pair<std::string, SendJob>>;

class PgBossClient {
 public:
  // `schema` must pass validate_schema_name (throws ConfigError otherwise).
  PgBossClient(ConnectionPool& pool, std::string schema);

  const std::string& schema() const { return schema_; }
  ConnectionPool& pool() const { return pool_; }

  // check_schema_version() on a pooled connection.
  int check_version();

  // pg-boss createQueue: create_queue(name, options) under the `create-queue` advisory lock.
  // Idempotent (an existing queue is left unchanged). `options` uses pg-boss's camelCase keys;
  // policy defaults to "standard". Throws ConfigError for a bad name or an unknown policy.
  void create_queue(const std::string& name, nlohmann::json options = nlohmann::json::object());

  // The queue row, cached; re-read when older than `refresh` (pg-boss: 60 s) or after
  // invalidate(). Throws yw::Error when the queue does not exist, ConfigError when its policy is
  // one this client does not implement.
  QueueInfo queue(const std::string& name);
  void invalidate(const std::string& name);
  void set_cache_refresh(std::chrono::seconds refresh) { refresh_ = refresh; }

  // pg-boss send/insert (§8): the id of each inserted job; a job a policy refused (ON CONFLICT)
  // yields no id. NOTIFYs when the queue has `notify` and a job is runnable now. Throws
  // InputError for bad options.
  std::optional<std::string> send(const std::string& queue, const SendJob& job);
  std::vector<std::string> send_many(const std::string& queue, const std::vector<SendJob>& jobs);

  // Claims up to `limit` jobs (§4): priority DESC, created_on; due; unblocked; the queue's policy
  // rules. A unique violation raised by the claim (a policy race) reads as an empty fetch.
  // `groups`: pg-boss's groupConcurrency (§4.4); absent, groups are not limited. Throws
  // InputError for a limit below 1 or an empty tier name.
  std::vector<Job> fetch(const std::string& queue, int limit,
                         const std::optional<GroupConcurrency>& groups = std::nullopt);

  // complete(done) and fetch(limit) in one statement and one commit; the ids actually completed
  // are stored in `completed`. Same semantics as the two calls, which touch disjoint rows,
  // except that a group slot freed by `done` is taken into account from the next statement on.
  std::vector<Job> complete_and_fetch(const std::string& queue, const std::vector<Settle>& done,
                                      int limit, std::vector<std::string>& completed,
                                      const std::optional<GroupConcurrency>& groups = std::nullopt);

  // Whether claim_and_run may serve `queue`: its policy (standard, short) puts no rule on active
  // jobs, which a claim that leaves its rows queued until commit could not keep.
  bool claims_in_transaction(const std::string& queue);

  // What claim_and_run's `run` decides for one job it was handed.
  struct RunOutcome {
    enum class Kind { complete, fail, fail_terminal } kind = Kind::complete;
    Settle settle;                        // the job's id and retry_count; its output
    ChildJobs children;                   // sent with a completion
    std::vector<TxStatement> statements;  // run with a completion, after its children
  };
  struct RunResult {
    std::size_t claimed = 0;
    std::vector<std::string> completed, failed, dead;  // ids
  };
  // Claims up to `limit` jobs and settles them in one transaction: the next jobs are row-locked
  // where they are (lock_next_jobs), `run` gets them in claim order and returns one outcome per
  // job in the same order, and every outcome is written (completions with their children and
  // statements, fails through pg-boss's retry and dead-letter rules) before one commit. A job
  // goes from queued to its outcome in one step; until the commit nothing of it is visible, and
  // a transaction that does not commit (lost connection, killed worker) leaves its jobs queued
  // with nothing sent. That is one write per job instead of two (claim, then settle), and a
  // batch's children in one statement per child queue. Only for claims_in_transaction queues
  // and handlers that finish in moments: the rows stay locked while `run` runs. Throws like the
  // other calls; nothing is written then, except after a commit left in doubt
  // (pqxx::in_doubt_error, an is_connection_error), when the jobs either settled or are queued.
  RunResult claim_and_run(
      const std::string& queue, int limit,
      const std::function<std::vector<RunOutcome>(const std::vector<Job>&)>& run);

  // Completes the given attempts with their own outputs; returns the ids actually completed.
  std::vector<std::string> complete(const std::string& queue, const std::vector<Settle>& jobs);
  // Completes one attempt and sends `children` in the same transaction: all or nothing. Returns
  // false (and sends nothing) when the claim was lost. Children refused by a policy are skipped.
  // `statements` run in that transaction too, after the completion.
  bool complete_with_children(const std::string& queue, const Settle& job,
                              const ChildJobs& children,
                              std::vector<std::optional<std::string>>* child_ids = nullptr,
                              const std::vector<TxStatement>& statements = {});
  // Fails the attempts (§6): retry with delay/backoff while retries are left, else failed plus
  // the dead-letter copy. `terminal` fails without retry (12.38's deadletter disposition).
  std::vector<std::string> fail(const std::string& queue, const std::vector<Settle>& jobs,
                                bool terminal);
  // Heartbeat: refreshes heartbeat_on of the attempts still active; returns their ids.
  std::vector<std::string> touch(const std::string& queue,
                                 const std::vector<std::pair<std::string, int>>& attempts);

  // The supervisor's expiry sweeps (§7, §10) for `queues`: active jobs past expire_seconds
  // ("job timed out") and jobs whose heartbeat lapsed ("job heartbeat timeout"), failed through
  // the retry/dead-letter rules in batches of 1000 under pg-boss's advisory locks
  // (<table>failJobsByTimeout / <table>failJobsByHeartbeat). Returns how many jobs it failed.
  int expire_sweep(const std::vector<std::string>& queues);
  // The maintenance pass (§10.2) for the queues whose `maintain_on` claim is at least `interval`
  // old, as pg-boss's own: finished jobs past deletion_seconds and queued jobs past keep_until
  // deleted in key-ordered batches under <table>deletion; the queue row's retained_count,
  // retained_on and total_count set by a full walk (reduced by what was deleted when a walk is cut
  // short); orphaned job_dependency rows removed under <table>cleanupDependencies; the claims of
  // queues a failed pass did not finish handed back. Returns how many jobs it deleted.
  int deletion_sweep(const std::vector<std::string>& queues, std::chrono::seconds interval);

  // The schema's LISTEN/NOTIFY channel (§9).
  std::string notify_channel();

  // Jobs of `queue` waiting to run (created or retry).
  std::int64_t queue_depth(const std::string& queue);
  // Every column of one job as JSON (getJobById), or null when absent.
  nlohmann::json get_job(const std::string& queue, const std::string& id);

 private:
  // queue(), reading a row missing from the cache through `tx` when given (a caller holding a
  // pooled connection must not wait for a second one).
  QueueInfo queue_via(const std::string& name, pqxx::transaction_base* tx);
  // Asks the server whether transaction `xid` (txid_current() text) committed: true, false
  // (rolled back) or nullopt (not learnt within 10 s, or too old to be known).
  std::optional<bool> transaction_committed(const std::string& xid);
  std::vector<std::string> settle(const std::string& queue, const std::vector<Settle>& jobs,
                                  int kind);
  std::vector<Job> parse_claimed(const std::string& queue, std::vector<pqxx::row> rows, int first);

  ConnectionPool& pool_;
  std::string schema_;
  std::chrono::seconds refresh_{60};
  std::mutex cache_mutex_;
  std::map<std::string, std::pair<QueueInfo, std::chrono::steady_clock::time_point>> cache_;
};

}  // namespace yw::queue
