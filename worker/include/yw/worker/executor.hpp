#pragma once
// The executor: takes jobs from pg-boss queues and runs them through the handler registry
// (design.md §1, §6; pgboss-protocol.md §14).
//
// Per queue: one fetch loop claiming up to the free slots (concurrency_for(queue), at most
// `max_batch` per statement), up to one thread per slot running handlers (started as jobs need
// them, woken one at a time and kept for later batches), and one settle loop that
// completes/fails finished jobs in batches. Fetching is woken by NOTIFY (queues with `notify`),
// by a fetch that came back full (immediate refetch as slots free up) or by the poll interval.
// A transactional queue (ExecutorOptions::transactional_queues) runs its handlers on its fetch
// loops instead, one loop per `max_batch` slots (up to 4), each batch in its own transaction.
//
// Outcomes (style.md habit 9): a returned JSON value completes the job with pg-boss's stored
// shape; yw::InputError fails it terminally (dead letter at once); any other exception fails it
// retryably, with pg-boss's {name, message, stack} error. A job whose handler runs past
// expire_seconds is failed ("handler execution exceeded Ns") and its ctx.stop is requested; jobs
// with heartbeat_seconds are touched every heartbeat_seconds / 2 and a lost claim requests stop.
// A settle that changes nothing (claim lost) is logged and counted, never thrown. A settle that
// fails is retried (connection losses until the shutdown deadline, other errors five times); a
// completion that still cannot be written fails the attempt retryably instead.
//
// Thread-safety: start/stop/fail_back_running/join from one controlling thread; in_flight() and
// stats() from anywhere.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "yw/queue/client.hpp"
#include "yw/worker/config.hpp"
#include "yw/worker/handler.hpp"

namespace yw::worker {

// Queues whose handlers do no audio work, and how many of their jobs run at once by default.
// Their handlers only read the job and name its children, so they also run transactionally.
inline const std::vector<std::string> kCheapQueues = {"process_new_record"};
inline constexpr int kCheapQueueConcurrency = 2000;
inline constexpr int kCheapQueueMaxBatch = 1000;

struct ExecutorOptions {
  std::vector<std::string> queues;               // empty: every queue in the registry
  int concurrency = 4;                           // jobs in flight per queue (WORKER_CONCURRENCY)
  std::map<std::string, int> queue_concurrency;  // per-queue overrides
  // pg-boss groupConcurrency per queue, passed to every fetch of that queue (§4.4).
  std::map<std::string, queue::GroupConcurrency> group_concurrency;
  int max_batch = 100;                         // most jobs claimed by one fetch
  std::map<std::string, int> queue_max_batch;  // per-queue overrides
  // Fetch and settle loops per queue, each on its own pooled connection: more overlap database
  // round trips (the pool needs fetchers + settlers connections per queue, plus 2).
  int fetchers = 1;
  int settlers = 1;
  // A fetch also writes the completions waiting at that moment, in the same statement (one
  // commit instead of two); the settle loops write the rest, and every failure.
  bool combine_settle = true;
  std::chrono::milliseconds poll_interval{2000};
  // The supervisor's expiry/heartbeat sweep (§10); zero disables it.
  std::chrono::milliseconds sweep_interval{10'000};
  // The maintenance deletion claim interval (pg-boss: 24 h); zero disables it.
  std::chrono::seconds deletion_interval{86'400};
  // Create each queue and its `<name>__dead` dead-letter queue at start (idempotent).
  bool create_queues = true;
  // Extra create_queue options per queue (pg-boss camelCase keys), e.g. {"notify": true}.
  std::map<std::string, nlohmann::json> queue_options;
  // LISTEN for NOTIFY on the schema's channel (only queues with notify are woken by it).
  bool listen = true;
  std::string listen_url;  // connection for LISTEN; empty: the pool's URL
  // Queues whose jobs are claimed, run and settled in one transaction (PgBossClient::
  // claim_and_run) while their policy allows it and no group limit applies: one write per job
  // instead of two, a batch's children in one statement, and nothing left active by a worker
  // that dies. Only for handlers that finish in moments (they run on the fetch thread while the
  // rows are locked). A batch that fails other than by a lost connection sends the queue back to
  // the claim-then-settle path for a minute, where a bad job fails alone.
  std::vector<std::string> transactional_queues;
  // Asked before each claim of a queue: a non-empty answer (the reason) holds that queue's claims
  // for now; completions and failures are still written. Called from fetch threads.
  std::function<std::string(const std::string& queue)> claim_hold;
  const WorkerConfig* config = nullptr;  // handed to handlers
  Device device;

  // concurrency, queue_concurrency (kCheapQueues at kCheapQueueConcurrency, claiming
  // kCheapQueueMaxBatch per fetch, unless configured; kCheapQueues transactional),
  // queue_max_batch, group_concurrency, queues from a WorkerConfig.
  static ExecutorOptions from_config(const WorkerConfig& config);

  // Fetch loops `queue` gets, each on its own pooled connection: `fetchers`, or for a
  // transactional queue one per `max_batch` of its concurrency (up to 4) when that is more.
  // (The executor runs a queue transactionally only when its policy allows; this counts it as
  // if it does, so a pool sized from it is never short.)
  int fetch_loops(const std::string& queue) const;
};

struct ExecutorStats {
  std::uint64_t fetched = 0;
  std::uint64_t completed = 0;
  std::uint64_t failed = 0;       // retryable fails settled
  std::uint64_t dead = 0;         // terminal fails settled
  std::uint64_t lost_claims = 0;  // settles or touches that found the claim gone
  std::uint64_t expired = 0;      // jobs failed by the in-process expiry
  std::uint64_t swept = 0;        // jobs failed by the expiry sweep (any worker's)
  // Completions and fails that could not be written at all (retries exhausted or the shutdown
  // deadline passed): their jobs stay active until expiry and then run again.
  std::uint64_t settles_lost = 0;
};

class Executor {
 public:
  Executor(queue::PgBossClient& client, const HandlerRegistry& registry, ExecutorOptions options);
  ~Executor();  // stop_fetching + join(0)
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Creates the queues (when asked), checks each has a handler and a supported policy, and
  // starts the loops. Throws ConfigError for a queue without a handler.
  void start();
  // Stops claiming new jobs; running ones continue (draining).
  void stop_fetching();
  // Jobs claimed and not yet settled.
  int in_flight() const;
  // Fails every job still running back to pg-boss as retryable and requests its stop; their
  // handlers' results are then discarded. Returns how many were failed back.
  int fail_back_running();
  // Stops every loop after pending settles are written, waiting up to `grace` for handlers to
  // return. Returns false when some handler thread was still busy (it is detached).
  bool join(std::chrono::milliseconds grace);

  ExecutorStats stats() const;
  const std::vector<std::string>& queues() const { return queues_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> queues_;
};

}  // namespace yw::worker
