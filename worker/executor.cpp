#include "yw/worker/executor.hpp"

#include "yw/worker/metrics.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <thread>

#include <pqxx/pqxx>

#include "yw/common/error.hpp"
#include "yw/common/log.hpp"
#include "yw/queue/listener.hpp"

namespace yw::worker {
namespace {

using SteadyTime = std::chrono::steady_clock;
using nlohmann::json;
using std::chrono::milliseconds;

// One attempt being handled here.
struct Running {
  queue::Job job;
  SteadyTime::time_point started;
  SteadyTime::time_point last_touch;
  std::stop_source stop;
  // Set once by whoever settles the attempt first: the handler's own outcome, the in-process
  // expiry, a lost heartbeat claim or the shutdown fail-back. The others then leave it alone.
  std::atomic<bool> settled{false};
  std::atomic<bool> touch_requested{false};
};

struct Outcome {
  enum class Kind { complete, fail, fail_terminal } kind = Kind::complete;
  queue::Settle settle;
  queue::ChildJobs children;
  std::vector<queue::TxStatement> statements;  // run in the completing transaction
};

struct QueueLoop {
  std::string name;
  int concurrency = 1;
  std::optional<queue::GroupConcurrency> groups;  // pg-boss groupConcurrency of every fetch
  const HandlerFn* handler = nullptr;
  int max_batch = 100;  // most jobs one fetch claims
  // Claimed, run and settled in one transaction (ExecutorOptions::transactional_queues) unless
  // a failed batch sent the queue back to claim-then-settle until `classic_until`.
  bool transactional = false;
  SteadyTime::time_point classic_until{};
  std::mutex m;
  std::condition_variable fetch_cv;
  std::condition_variable work_cv;
  std::condition_variable settle_cv;
  std::deque<queue::Job> pending;
  std::deque<Outcome> outcomes;
  int busy = 0;       // claimed and not yet through its handler: what concurrency limits
  int unsettled = 0;  // outcomes not yet written back
  bool wake = false;
  int workers_alive = 0;
  int loops_alive = 0;  // fetch and settle threads still in their loops
  // Worker threads parked on work_cv, and whether one of them has been signalled and not yet
  // run. At most one wake is in flight: a woken worker takes a job and passes the wake on while
  // jobs are left, so threads join at the rate the queue needs instead of one futex round trip
  // per job (short jobs are drained by the threads already awake).
  int idle_workers = 0;
  bool waking = false;
  std::vector<std::thread> workers;
  std::vector<std::thread> fetchers;
  std::vector<std::thread> settlers;
};

std::string record_id_of(const json& data) {
  if (!data.is_object()) return {};
  const auto it = data.find("record_id");
  if (it == data.end()) return {};
  return it->is_string() ? it->get<std::string>() : it->dump();
}

json exception_output(const std::exception& e) {
  std::string name = "Error";
  if (dynamic_cast<const InputError*>(&e) != nullptr) {
    name = "InputError";
  } else if (dynamic_cast<const pqxx::sql_error*>(&e) != nullptr) {
    name = "DatabaseError";
  }
  return queue::error_output(name, e.what(), error_stack(e));
}

// Sleeps up to `d`, returning early when `stop` turns true.
void interruptible_sleep(const std::atomic<bool>& stop, milliseconds d) {
  const auto until = SteadyTime::now() + d;
  while (!stop.load() && SteadyTime::now() < until)
    std::this_thread::sleep_for(std::min(milliseconds(50), d));
}

// The state of executors whose threads were abandoned by join: reachable from here (so it stays
// alive under those threads, and leak checkers see it as live), never freed.
std::mutex abandoned_m;
std::vector<void*>* abandoned_impls = nullptr;

}  // namespace

ExecutorOptions ExecutorOptions::from_config(const WorkerConfig& config) {
  ExecutorOptions o;
  o.queues = config.queues;
  o.concurrency = config.concurrency;
  // Cheap queues (no audio: a record's handler only reads its data and names its children) are
  // not limited by WORKER_CONCURRENCY, which sizes the audio queues: they run up to
  // kCheapQueueConcurrency at once and claim kCheapQueueMaxBatch per fetch (the claim size that
  // costs the database least per job; twice as many in flight lets the next claim run while the
  // last one's jobs are settled: +10-20 % in scripts/bench/queue.sh). Handler threads start only
  // as jobs wait, so a no-op drain runs on a few. YW_QUEUE_CONCURRENCY still overrides.
  for (const auto& q : kCheapQueues) {
    o.queue_concurrency[q] = kCheapQueueConcurrency;
    o.queue_max_batch[q] = kCheapQueueMaxBatch;
  }
  o.transactional_queues = kCheapQueues;
  for (const auto& [q, n] : config.queue_concurrency)
    o.queue_concurrency[q] = n;
  o.group_concurrency = config.group_concurrency;
  o.config = &config;
  return o;
}

int ExecutorOptions::fetch_loops(const std::string& queue) const {
  int n = std::max(1, fetchers);
  if (std::find(transactional_queues.begin(), transactional_queues.end(), queue) ==
          transactional_queues.end() ||
      group_concurrency.count(queue) != 0)
    return n;
  const auto c = queue_concurrency.find(queue);
  const int slots = std::max(1, c != queue_concurrency.end() ? c->second : concurrency);
  const auto b = queue_max_batch.find(queue);
  const int batch = std::max(1, b != queue_max_batch.end() ? b->second : max_batch);
  // A transactional queue's handlers run on its fetch loops: one loop per batch of slots, so one
  // batch's round trips overlap another's handlers.
  return std::max(n, std::min(4, (slots + batch - 1) / batch));
}

struct Executor::Impl {
  Impl(queue::PgBossClient& c, const HandlerRegistry& r, ExecutorOptions o)
      : client(c), registry(r), opt(std::move(o)) {}

  queue::PgBossClient& client;
  const HandlerRegistry& registry;
  ExecutorOptions opt;
  std::vector<std::unique_ptr<QueueLoop>> loops;
  std::vector<std::string> sweep_queues;  // worked queues and their dead-letter queues

  std::atomic<bool> fetching{true};
  std::atomic<bool> fetch_stop{false};   // !fetching, for interruptible_sleep
  std::atomic<int> background_alive{0};  // the monitor and the sweeper while in their loops
  std::atomic<bool> workers_stop{false};
  std::atomic<bool> settlers_stop{false};
  std::atomic<bool> background_stop{false};
  SteadyTime::time_point settle_deadline = SteadyTime::time_point::max();
  std::mutex deadline_m;

  std::mutex running_m;
  std::map<std::string, std::shared_ptr<Running>> running;

  std::thread monitor;
  std::thread sweeper;
  std::unique_ptr<queue::Listener> listener;

  std::atomic<std::uint64_t> fetched{0}, completed{0}, failed{0}, dead{0}, lost{0}, expired{0},
      swept{0}, settles_lost{0};

  QueueLoop* loop_of(const std::string& name) {
    for (auto& l : loops)
      if (l->name == name) return l.get();
    return nullptr;
  }

  void wake(const std::string& name) {
    for (auto& l : loops) {
      if (name.empty() || l->name == name) {
        std::lock_guard lock(l->m);
        l->wake = true;
        l->fetch_cv.notify_all();
      }
    }
  }

  // Settle loops sleep only while `outcomes` is empty, so the push that makes it non-empty is
  // the only one that must signal. Caller holds loop.m.
  static void add_outcome(QueueLoop& loop, Outcome o) {
    const bool was_empty = loop.outcomes.empty();
    loop.outcomes.push_back(std::move(o));
    if (was_empty) loop.settle_cv.notify_one();
  }

  // Fetch loops wait for a free slot only when every slot was taken, so only the release that
  // ends that state signals them. Caller holds loop.m.
  static void release_slots(QueueLoop& loop, int n) {
    const bool was_full = loop.busy >= loop.concurrency;
    loop.busy -= n;
    if (was_full && n > 0) loop.fetch_cv.notify_all();
  }

  // Gets one more worker going when jobs are waiting and no wake is already on its way: a
  // parked one if any, else a new thread while the loop has fewer than `concurrency`. Threads
  // are started on demand, so a worker sized for 2,000 slow jobs does not pay for 2,000 threads
  // while it drains short ones. Caller holds loop.m.
  void wake_worker(QueueLoop& loop) {
    if (loop.pending.empty() || loop.waking) return;
    if (loop.idle_workers > 0) {
      loop.waking = true;
      loop.work_cv.notify_one();
      return;
    }
    if (workers_stop || loop.workers_alive >= loop.concurrency) return;
    try {
      loop.workers.emplace_back([this, &loop] { worker_loop(loop); });
    } catch (const std::system_error& e) {
      // Out of threads: the ones running take the jobs in turn.
      log(LogLevel::error, "executor", "cannot start a worker thread",
          {field("queue", loop.name), field("workers", loop.workers_alive),
           field("error", e.what())});
      return;
    }
    loop.waking = true;
    ++loop.workers_alive;
  }

  // `frees_slot`: the handler is done with the job, so its concurrency slot is free again.
  void push_outcome(QueueLoop& loop, Outcome o, bool frees_slot) {
    std::lock_guard lock(loop.m);
    add_outcome(loop, std::move(o));
    ++loop.unsettled;
    if (frees_slot) release_slots(loop, 1);
  }

  void free_slot(QueueLoop& loop) {
    std::lock_guard lock(loop.m);
    release_slots(loop, 1);
  }

  // Moves plain completions (no children) waiting in `loop.outcomes` into `out`, so the next
  // claim statement writes them too (one commit instead of two). Caller holds loop.m.
  static void take_completions(QueueLoop& loop, std::vector<queue::Settle>& out) {
    constexpr std::size_t kMax = 1000;
    for (auto it = loop.outcomes.begin(); it != loop.outcomes.end() && out.size() < kMax;) {
      if (it->kind == Outcome::Kind::complete && it->children.empty() && it->statements.empty()) {
        out.push_back(std::move(it->settle));
        it = loop.outcomes.erase(it);
      } else {
        ++it;
      }
    }
  }

  void fetch_loop(QueueLoop& loop) {
    milliseconds backoff(100);
    std::vector<queue::Settle> completions;
    std::string held;  // why claims of this queue are held now; empty while they are not
    while (fetching) {
      if (opt.claim_hold) {
        std::string reason = opt.claim_hold(loop.name);
        if (held.empty() && !reason.empty()) {
          log(LogLevel::warn, "executor", "not claiming until this is fixed",
              {field("queue", loop.name), field("reason", reason)});
        } else if (!held.empty() && reason.empty()) {
          log(LogLevel::info, "executor", "claiming again", {field("queue", loop.name)});
        }
        held = std::move(reason);
        if (!held.empty()) {
          std::unique_lock lock(loop.m);
          loop.fetch_cv.wait_for(lock, std::min(opt.poll_interval, milliseconds(1000)),
                                 [&] { return !fetching; });
          continue;
        }
      }
      int want = 0;
      bool in_transaction = false;
      {
        std::unique_lock lock(loop.m);
        loop.fetch_cv.wait(lock, [&] { return !fetching || loop.busy < loop.concurrency; });
        if (!fetching) break;
        want = std::min(loop.concurrency - loop.busy, loop.max_batch);
        // Reserved before the statement runs, so parallel fetch loops never overshoot.
        loop.busy += want;
        loop.wake = false;
        in_transaction = loop.transactional && SteadyTime::now() >= loop.classic_until;
      }
      // Asked again once slots are free: the wait above may have lasted while the jobs it waited
      // for met the fault that holds claims (their retries would be claimed at once otherwise).
      if (opt.claim_hold && !opt.claim_hold(loop.name).empty()) {
        std::lock_guard lock(loop.m);
        release_slots(loop, want);
        continue;
      }
      if (opt.combine_settle && !in_transaction) {
        std::lock_guard lock(loop.m);
        take_completions(loop, completions);
      }
      if (in_transaction) {
        const bool again = run_transaction(loop, want, backoff);
        if (again) continue;
        std::unique_lock lock(loop.m);
        loop.fetch_cv.wait_for(lock, opt.poll_interval, [&] { return !fetching || loop.wake; });
        continue;
      }
      std::vector<queue::Job> jobs;
      bool settled = false;
      try {
        std::vector<std::string> done;
        jobs = client.complete_and_fetch(loop.name, completions, want, done, loop.groups);
        if (!completions.empty()) {
          settled = !done.empty();
          completed += done.size();
          count(loop.name, "completed", done.size());
          report_lost(loop.name, completions, done, "complete");
          std::lock_guard lock(loop.m);
          loop.unsettled -= static_cast<int>(completions.size());
          completions.clear();
        }
        backoff = milliseconds(100);
      } catch (const std::exception& e) {
        {
          std::lock_guard lock(loop.m);
          loop.busy -= want;
          loop.fetch_cv.notify_all();
          // Not known to be written: the settle loop retries them (fenced, so a completion that
          // did land is reported as a lost claim, never written twice).
          for (auto& c : completions) {
            Outcome o;
            o.settle = std::move(c);
            add_outcome(loop, std::move(o));
          }
          completions.clear();
        }
        log(LogLevel::warn, "executor", "fetch failed; retrying",
            {field("queue", loop.name), field("error", e.what()),
             field("backoff_ms", backoff.count())});
        interruptible_sleep(fetch_stop, backoff);
        backoff = std::min(backoff * 2, milliseconds(5000));
        continue;
      }
      const bool full = static_cast<int>(jobs.size()) == want;
      fetched += jobs.size();
      {
        std::lock_guard lock(loop.m);
        loop.busy -= want - static_cast<int>(jobs.size());
        for (auto& j : jobs)
          loop.pending.push_back(std::move(j));
        wake_worker(loop);
        if (!full) loop.fetch_cv.notify_all();
      }
      // A group slot freed by the completions just written counts as taken in that statement's
      // own claim, so claim again at once instead of after a poll interval.
      if (full || (settled && loop.groups)) continue;
      std::unique_lock lock(loop.m);
      loop.fetch_cv.wait_for(lock, opt.poll_interval, [&] { return !fetching || loop.wake; });
    }
  }

  void worker_loop(QueueLoop& loop) {
    std::unique_lock lock(loop.m);
    loop.waking = false;  // started by wake_worker, which counts a new thread as a wake
    while (true) {
      if (loop.pending.empty()) {
        if (workers_stop) break;
        ++loop.idle_workers;
        // No predicate loop: a signalled worker must clear `waking` even when the jobs it was
        // woken for were taken meanwhile, or no later wake would be sent.
        loop.work_cv.wait(lock);
        --loop.idle_workers;
        loop.waking = false;
        continue;
      }
      // The job moves from `pending` to `running` under loop.m: fail_back_running swaps
      // `pending` under the same lock and reads `running` after it, so it finds every claimed
      // job in one of the two. (Registered after the unlock, a job popped in that window was
      // in neither: it was not failed back, its handler got no stop, and a shutdown waited on
      // it or, in a test, saw the handler never stopped.)
      auto r = begin_job(std::move(loop.pending.front()));
      loop.pending.pop_front();
      wake_worker(loop);
      lock.unlock();
      run_job(loop, std::move(r));
      lock.lock();
    }
    --loop.workers_alive;
    loop.work_cv.notify_all();
  }

  // Registers a claimed job as running (lock order: loop.m, then running_m).
  std::shared_ptr<Running> begin_job(queue::Job claimed) {
    auto r = std::make_shared<Running>();
    r->job = std::move(claimed);
    r->started = r->last_touch = SteadyTime::now();
    std::lock_guard lock(running_m);
    running[r->job.id] = r;
    return r;
  }

  // Runs the queue's handler on one job and turns what it did into an outcome (the exception
  // classes of the header's contract); `error` gets a failure's message.
  Outcome call_handler(QueueLoop& loop, const queue::Job& job, std::stop_token stop,
                       std::function<void()> heartbeat, std::string& error) {
    const auto started = SteadyTime::now();
    Metrics::global().add("yw_jobs_in_flight", {{"queue", job.queue}}, 1);
    std::vector<JobContext::ChildJob> children;
    JobContext ctx;
    ctx.queue = job.queue;
    ctx.id = job.id;
    ctx.retry_count = job.retry_count;
    ctx.stop = std::move(stop);
    ctx.config = opt.config;
    ctx.device = opt.device;
    ctx.heartbeat = std::move(heartbeat);
    ctx.children = &children;
    std::vector<queue::TxStatement> statements;
    ctx.statements = &statements;

    Outcome o;
    o.settle.id = job.id;
    o.settle.retry_count = job.retry_count;
    try {
      o.settle.output = queue::stored_output((*loop.handler)(job.data, ctx));
      o.kind = Outcome::Kind::complete;
      for (auto& c : children)
        o.children.emplace_back(c.queue, queue::SendJob{std::move(c.data), std::move(c.options)});
      o.statements = std::move(statements);
    } catch (const InputError& e) {
      o.kind = Outcome::Kind::fail_terminal;
      o.settle.output = exception_output(e);
      error = e.what();
    } catch (const std::exception& e) {
      o.kind = Outcome::Kind::fail;
      o.settle.output = exception_output(e);
      error = e.what();
    } catch (...) {
      o.kind = Outcome::Kind::fail;
      o.settle.output = queue::error_output("Error", "unknown exception", "Error: unknown");
      error = "unknown exception";
    }
    const auto elapsed = SteadyTime::now() - started;
    Metrics::global().add("yw_jobs_in_flight", {{"queue", job.queue}}, -1);
    Metrics::global().observe("yw_job_duration_seconds", {{"queue", job.queue}},
                              std::chrono::duration<double>(elapsed).count());
    return o;
  }

  void run_job(QueueLoop& loop, std::shared_ptr<Running> r) {
    const queue::Job& job = r->job;  // immutable from here on; the monitor reads it too
    const std::string record_id = record_id_of(job.data);
    // Per-job records are built only when they will be written: at thousands of jobs a second
    // their fields cost more than the no-op handler they describe.
    const bool log_jobs = log_level() <= LogLevel::info;
    if (log_jobs) {
      log(LogLevel::info, "executor", "job started",
          {field("queue", job.queue), field("job_id", job.id), field("record_id", record_id),
           field("retry_count", job.retry_count)});
    }
    std::string error;
    Outcome o = call_handler(
        loop, job, r->stop.get_token(), [r] { r->touch_requested = true; }, error);
    const auto ms =
        std::chrono::duration_cast<milliseconds>(SteadyTime::now() - r->started).count();
    {
      // A later attempt of the same job (this one expired and was claimed again) may have
      // replaced the entry; leave that one alone.
      std::lock_guard lock(running_m);
      if (auto it = running.find(job.id); it != running.end() && it->second == r) running.erase(it);
    }
    if (r->settled.exchange(true)) {
      // Expired, failed back or claim lost: the attempt is settled already; drop this result.
      log(LogLevel::warn, "executor", "job result discarded: its attempt was already settled",
          {field("queue", job.queue), field("job_id", job.id), field("ms", ms)});
      free_slot(loop);
      return;
    }
    if (o.kind == Outcome::Kind::complete) {
      if (log_jobs)
        log(LogLevel::info, "executor", "job completed",
            {field("queue", job.queue), field("job_id", job.id), field("record_id", record_id),
             field("ms", ms)});
    } else {
      log(LogLevel::warn, "executor",
          o.kind == Outcome::Kind::fail_terminal ? "job failed (terminal)" : "job failed",
          {field("queue", job.queue), field("job_id", job.id), field("record_id", record_id),
           field("ms", ms), field("error", error)});
    }
    push_outcome(loop, std::move(o), true);
  }

  // One batch of a transactional queue (`want` slots reserved by the caller, released here):
  // claim, run and settle in one transaction. True when the loop should claim again at once: the
  // claim came back full, or it failed (after the backoff). A lost connection leaves the jobs
  // queued (back off and retry); any other failure sends the queue to claim-then-settle for a
  // minute, where a job that cannot be settled fails on its own instead of rolling back every batch
  // it is in.
  bool run_transaction(QueueLoop& loop, int want, milliseconds& backoff) {
    const bool log_jobs = log_level() <= LogLevel::info;
    struct Ran {
      std::string id, record_id, error;
      Outcome::Kind kind;
      int retry_count;
      long long ms;
    };
    std::vector<Ran> ran;
    std::set<std::string> child_queues;
    bool full = false;
    try {
      const auto result = client.claim_and_run(loop.name, want, [&](const auto& jobs) {
        ran.clear();
        child_queues.clear();
        std::vector<queue::PgBossClient::RunOutcome> out;
        out.reserve(jobs.size());
        for (const queue::Job& job : jobs) {
          const auto started = SteadyTime::now();
          std::string error;
          Outcome o = call_handler(
              loop, job, {}, [] {}, error);
          ran.push_back(
              {job.id, log_jobs ? record_id_of(job.data) : std::string(), std::move(error), o.kind,
               job.retry_count,
               std::chrono::duration_cast<milliseconds>(SteadyTime::now() - started).count()});
          queue::PgBossClient::RunOutcome r;
          r.kind = o.kind == Outcome::Kind::complete
                       ? queue::PgBossClient::RunOutcome::Kind::complete
                   : o.kind == Outcome::Kind::fail
                       ? queue::PgBossClient::RunOutcome::Kind::fail
                       : queue::PgBossClient::RunOutcome::Kind::fail_terminal;
          r.settle = std::move(o.settle);
          for (const auto& [q, _] : o.children)
            child_queues.insert(q);
          r.children = std::move(o.children);
          r.statements = std::move(o.statements);
          out.push_back(std::move(r));
        }
        return out;
      });
      full = static_cast<int>(result.claimed) == want;
      fetched += result.claimed;
      completed += result.completed.size();
      failed += result.failed.size();
      dead += result.dead.size();
      count(loop.name, "completed", result.completed.size());
      count(loop.name, "failed", result.failed.size());
      count(loop.name, "dead", result.dead.size());
      // Written once the batch committed: an attempt rolled back had no effect, and leaves no
      // "job started" behind (one warning says what happened to its batch).
      for (const Ran& j : ran) {
        if (log_jobs) {
          log(LogLevel::info, "executor", "job started",
              {field("queue", loop.name), field("job_id", j.id), field("record_id", j.record_id),
               field("retry_count", j.retry_count)});
        }
        if (j.kind == Outcome::Kind::complete) {
          if (log_jobs) {
            log(LogLevel::info, "executor", "job completed",
                {field("queue", loop.name), field("job_id", j.id), field("record_id", j.record_id),
                 field("ms", j.ms)});
          }
        } else {
          log(LogLevel::warn, "executor",
              j.kind == Outcome::Kind::fail_terminal ? "job failed (terminal)" : "job failed",
              {field("queue", loop.name), field("job_id", j.id), field("record_id", j.record_id),
               field("ms", j.ms), field("error", j.error)});
        }
      }
      for (const auto& q : child_queues)
        wake(q);
      backoff = milliseconds(100);
    } catch (const std::exception& e) {
      {
        std::lock_guard lock(loop.m);
        release_slots(loop, want);
      }
      if (queue::is_connection_error(e)) {
        log(LogLevel::warn, "executor", "claim-and-run transaction lost its connection; retrying",
            {field("queue", loop.name), field("jobs", ran.size()), field("error", e.what()),
             field("backoff_ms", backoff.count())});
        interruptible_sleep(fetch_stop, backoff);
        backoff = std::min(backoff * 2, milliseconds(5000));
      } else {
        {
          std::lock_guard lock(loop.m);
          loop.classic_until = SteadyTime::now() + std::chrono::seconds(60);
        }
        log(LogLevel::warn, "executor",
            "claim-and-run transaction failed and was rolled back; this queue claims first and "
            "settles each job on its own for a minute",
            {field("queue", loop.name), field("jobs", ran.size()), field("error", e.what())});
      }
      return true;
    }
    std::lock_guard lock(loop.m);
    release_slots(loop, want);
    if (!full) loop.fetch_cv.notify_all();
    return full;
  }

  // Runs `fn` until it succeeds; false when it gave up. A lost connection is retried until the
  // shutdown settle deadline, any other error (a statement a pooler broke, a server error) up
  // to kOtherTries times: a settle given up leaves its job `active`, to be run again after its
  // expiry, so giving up is the last resort and is counted (settles_lost).
  template <typename Fn>
  bool with_retry(const std::string& what, const std::string& queue_name, Fn&& fn) {
    constexpr int kOtherTries = 5;
    milliseconds backoff(100);
    int other_errors = 0;
    while (true) {
      try {
        fn();
        return true;
      } catch (const std::exception& e) {
        const bool connection = queue::is_connection_error(e);
        if (!connection) ++other_errors;
        SteadyTime::time_point deadline;
        {
          std::lock_guard lock(deadline_m);
          deadline = settle_deadline;
        }
        if (other_errors >= kOtherTries || SteadyTime::now() > deadline) {
          log(LogLevel::error, "executor", what + " failed; giving up",
              {field("queue", queue_name), field("error", e.what()), field("tries", other_errors)});
          return false;
        }
        log(LogLevel::warn, "executor", what + " failed; retrying",
            {field("queue", queue_name), field("error", e.what()),
             field("backoff_ms", backoff.count())});
        std::this_thread::sleep_for(backoff);
        backoff = std::min(backoff * 2, milliseconds(5000));
      }
    }
  }

  // Settles that could not be written at all: their jobs stay active until expiry.
  void settles_given_up(const std::string& queue_name, const std::vector<queue::Settle>& list,
                        std::string_view what) {
    settles_lost += list.size();
    count(queue_name, "settle_lost", list.size());
    for (const auto& s : list) {
      log(LogLevel::error, "executor",
          fmt::format("{} could not be written; the job stays active until it expires", what),
          {field("queue", queue_name), field("job_id", s.id)});
    }
  }

  // The Prometheus side of the settle counters (yw_jobs_total{queue,outcome}).
  static void count(const std::string& queue_name, const char* outcome, std::size_t n) {
    if (n > 0) {
      Metrics::global().add("yw_jobs_total", {{"queue", queue_name}, {"outcome", outcome}},
                            static_cast<double>(n));
    }
  }

  void report_lost(const std::string& queue_name, const std::vector<queue::Settle>& asked,
                   const std::vector<std::string>& done, std::string_view what) {
    if (done.size() == asked.size()) return;
    const std::set<std::string> ok(done.begin(), done.end());
    for (const auto& s : asked) {
      if (ok.count(s.id) != 0) continue;
      ++lost;
      count(queue_name, "lost", 1);
      log(LogLevel::warn, "executor", fmt::format("{} changed nothing: claim lost", what),
          {field("queue", queue_name), field("job_id", s.id), field("retry_count", s.retry_count)});
    }
  }

  void settle_batch(QueueLoop& loop, std::deque<Outcome>& batch) {
    std::vector<queue::Settle> completes, fails, terminals;
    for (auto& o : batch) {
      if (o.kind == Outcome::Kind::complete && o.children.empty() && o.statements.empty()) {
        completes.push_back(o.settle);
      } else if (o.kind == Outcome::Kind::complete) {
        settle_with_children(loop, o);
      } else if (o.kind == Outcome::Kind::fail) {
        fails.push_back(o.settle);
      } else {
        terminals.push_back(o.settle);
      }
    }
    if (!completes.empty()) {
      std::vector<std::string> done;
      if (with_retry("complete", loop.name,
                     [&] { done = client.complete(loop.name, completes); })) {
        completed += done.size();
        count(loop.name, "completed", done.size());
        report_lost(loop.name, completes, done, "complete");
      } else {
        // The completion cannot be written (its output refused, say): fail the attempt
        // retryably rather than leave it active for a second run after expiry.
        for (auto& c : completes)
          c.output = queue::error_output("Error", "completion could not be written",
                                         "Error: completion could not be written");
        fails.insert(fails.end(), completes.begin(), completes.end());
      }
    }
    for (const bool terminal : {false, true}) {
      auto& list = terminal ? terminals : fails;
      if (list.empty()) continue;
      std::vector<std::string> done;
      if (with_retry("fail", loop.name, [&] { done = client.fail(loop.name, list, terminal); })) {
        (terminal ? dead : failed) += done.size();
        count(loop.name, terminal ? "dead" : "failed", done.size());
        report_lost(loop.name, list, done, "fail");
      } else {
        settles_given_up(loop.name, list, "fail");
      }
    }
  }

  void settle_with_children(QueueLoop& loop, Outcome& o) {
    bool ok = false;
    std::string error;
    json error_out;
    bool input_error = false;
    const bool ran = with_retry("complete with children", loop.name, [&] {
      try {
        ok = client.complete_with_children(loop.name, o.settle, o.children, nullptr, o.statements);
      } catch (const std::exception& e) {
        if (queue::is_connection_error(e)) throw;
        // A child that cannot be sent (bad options, missing queue) fails the parent instead.
        error = e.what();
        error_out = exception_output(e);
        input_error = dynamic_cast<const InputError*>(&e) != nullptr;
      }
    });
    if (!ran) {
      settles_given_up(loop.name, {o.settle}, "complete with children");
      return;
    }
    if (!error.empty()) {
      log(LogLevel::warn, "executor", "child jobs could not be sent; failing the job",
          {field("queue", loop.name), field("job_id", o.settle.id), field("error", error)});
      queue::Settle s = o.settle;
      s.output = error_out;
      std::vector<std::string> done;
      if (with_retry("fail", loop.name, [&] { done = client.fail(loop.name, {s}, input_error); })) {
        (input_error ? dead : failed) += done.size();
        count(loop.name, input_error ? "dead" : "failed", done.size());
        report_lost(loop.name, {s}, done, "fail");
      } else {
        settles_given_up(loop.name, {s}, "fail");
      }
      return;
    }
    if (ok) {
      ++completed;
      count(loop.name, "completed", 1);
      // Children for queues this process serves are claimed now rather than at the next poll:
      // a queue without `notify` would otherwise leave a record's stages idle for up to
      // poll_interval each. (Other workers learn of them by NOTIFY or their own polling.)
      for (const auto& [child_queue, _] : o.children)
        wake(child_queue);
    } else {
      report_lost(loop.name, {o.settle}, {}, "complete");
    }
  }

  void settle_loop(QueueLoop& loop) {
    while (true) {
      std::deque<Outcome> batch;
      {
        std::unique_lock lock(loop.m);
        loop.settle_cv.wait(lock, [&] { return settlers_stop || !loop.outcomes.empty(); });
        if (loop.outcomes.empty()) break;
        batch.swap(loop.outcomes);
      }
      settle_batch(loop, batch);
      std::lock_guard lock(loop.m);
      loop.unsettled -= static_cast<int>(batch.size());
    }
  }

  // In-process expiry and heartbeats (protocol §7, §14.4).
  void monitor_loop() {
    while (!background_stop) {
      interruptible_sleep(background_stop, milliseconds(200));
      const auto now = SteadyTime::now();
      std::map<std::string, std::vector<std::shared_ptr<Running>>> to_touch;
      std::vector<std::shared_ptr<Running>> to_expire;
      {
        std::lock_guard lock(running_m);
        for (auto& [id, r] : running) {
          if (r->settled) continue;
          const auto limit = std::chrono::seconds(std::max(1, r->job.expire_seconds));
          if (now - r->started >= limit) {
            to_expire.push_back(r);
          } else if (r->job.heartbeat_seconds &&
                     (now - r->last_touch >= milliseconds(*r->job.heartbeat_seconds * 500) ||
                      r->touch_requested.exchange(false))) {
            to_touch[r->job.queue].push_back(r);
          }
        }
      }
      for (auto& r : to_expire) {
        if (r->settled.exchange(true)) continue;
        r->stop.request_stop();
        ++expired;
        const std::string message =
            fmt::format("handler execution exceeded {}s", std::max(1, r->job.expire_seconds));
        log(LogLevel::warn, "executor", "job expired in process",
            {field("queue", r->job.queue), field("job_id", r->job.id),
             field("expire_seconds", r->job.expire_seconds)});
        Outcome o;
        o.kind = Outcome::Kind::fail;
        o.settle = {r->job.id, r->job.retry_count,
                    queue::error_output("Error", message, "Error: " + message)};
        if (QueueLoop* loop = loop_of(r->job.queue)) push_outcome(*loop, std::move(o), false);
      }
      for (auto& [queue_name, list] : to_touch) {
        std::vector<std::pair<std::string, int>> attempts;
        for (auto& r : list)
          attempts.emplace_back(r->job.id, r->job.retry_count);
        std::vector<std::string> alive;
        try {
          alive = client.touch(queue_name, attempts);
        } catch (const std::exception& e) {
          log(LogLevel::warn, "executor", "heartbeat failed",
              {field("queue", queue_name), field("error", e.what())});
          continue;
        }
        const std::set<std::string> ok(alive.begin(), alive.end());
        for (auto& r : list) {
          if (ok.count(r->job.id) != 0) {
            r->last_touch = now;
          } else if (!r->settled.exchange(true)) {
            r->stop.request_stop();
            ++lost;
            log(LogLevel::warn, "executor", "heartbeat found the claim lost; stopping the job",
                {field("queue", queue_name), field("job_id", r->job.id)});
          }
        }
      }
    }
  }

  // The supervisor's sweeps (protocol §10) for when no Node process supervises.
  void sweep_loop() {
    while (!background_stop) {
      try {
        const int n = client.expire_sweep(opt.queues);
        swept += n;
        if (n > 0)
          log(LogLevel::info, "executor", "expiry sweep failed overdue jobs", {field("jobs", n)});
        if (opt.deletion_interval.count() > 0) {
          const int d = client.deletion_sweep(sweep_queues, opt.deletion_interval);
          if (d > 0)
            log(LogLevel::info, "executor", "deletion sweep removed jobs", {field("jobs", d)});
        }
      } catch (const std::exception& e) {
        log(LogLevel::warn, "executor", "sweep failed", {field("error", e.what())});
      }
      interruptible_sleep(background_stop, opt.sweep_interval);
    }
  }
};

Executor::Executor(queue::PgBossClient& client, const HandlerRegistry& registry,
                   ExecutorOptions options)
    : impl_(std::make_unique<Impl>(client, registry, std::move(options))) {
  queues_ = impl_->opt.queues.empty() ? registry.queues() : impl_->opt.queues;
  impl_->opt.queues = queues_;
}

Executor::~Executor() {
  if (impl_) {
    stop_fetching();
    join(milliseconds(0));
  }
}

void Executor::start() {
  Impl& s = *impl_;
  for (const auto& q : queues_) {
    const HandlerFn* handler = s.registry.find(q);
    if (handler == nullptr) throw ConfigError(fmt::format("queue '{}': no handler registered", q));
    const std::string dead = q + "__dead";
    if (s.opt.create_queues) {
      s.client.create_queue(dead, {{"policy", "standard"}});
      // notify: producers' sends NOTIFY, so listening workers start a job in milliseconds
      // instead of at the next poll (real-world.md §3: p50 1 s with notify=false, 2-5 ms with
      // it). create_queue leaves an existing queue as it is; see README for updating one.
      json options = {{"policy", "standard"}, {"deadLetter", dead}, {"notify", true}};
      if (auto it = s.opt.queue_options.find(q); it != s.opt.queue_options.end())
        options.update(it->second);
      s.client.create_queue(q, options);
    }
    s.client.queue(q);  // exists, policy supported
    auto loop = std::make_unique<QueueLoop>();
    loop->name = q;
    loop->handler = handler;
    auto it = s.opt.queue_concurrency.find(q);
    loop->concurrency =
        std::max(1, it != s.opt.queue_concurrency.end() ? it->second : s.opt.concurrency);
    if (auto g = s.opt.group_concurrency.find(q); g != s.opt.group_concurrency.end())
      loop->groups = g->second;
    auto b = s.opt.queue_max_batch.find(q);
    loop->max_batch = std::max(1, b != s.opt.queue_max_batch.end() ? b->second : s.opt.max_batch);
    loop->transactional =
        !loop->groups &&
        std::find(s.opt.transactional_queues.begin(), s.opt.transactional_queues.end(), q) !=
            s.opt.transactional_queues.end() &&
        s.client.claims_in_transaction(q);
    s.loops.push_back(std::move(loop));
    s.sweep_queues.push_back(q);
    s.sweep_queues.push_back(dead);
  }
  for (auto& l : s.loops) {
    QueueLoop& loop = *l;
    // Each fetch and settle thread says when it leaves its loop, so join() can wait for them with
    // a deadline: one blocked in a statement (a starved pooler queues it for minutes) must not
    // hold the process past its shutdown timeout.
    const auto counted = [&loop](auto body) {
      return [&loop, body] {
        body();
        std::lock_guard lock(loop.m);
        --loop.loops_alive;
        loop.work_cv.notify_all();
      };
    };
    const int fetchers =
        loop.transactional ? s.opt.fetch_loops(loop.name) : std::max(1, s.opt.fetchers);
    loop.loops_alive = std::max(1, s.opt.settlers) + fetchers;
    for (int i = 0; i < std::max(1, s.opt.settlers); ++i)
      loop.settlers.emplace_back(counted([&s, &loop] { s.settle_loop(loop); }));
    for (int i = 0; i < fetchers; ++i)
      loop.fetchers.emplace_back(counted([&s, &loop] { s.fetch_loop(loop); }));
  }
  ++s.background_alive;
  s.monitor = std::thread([&s] {
    s.monitor_loop();
    --s.background_alive;
  });
  if (s.opt.sweep_interval.count() > 0) {
    ++s.background_alive;
    s.sweeper = std::thread([&s] {
      s.sweep_loop();
      --s.background_alive;
    });
  }
  if (!s.opt.listen && !s.loops.empty()) {
    // Said once: without LISTEN every job waits for the next poll.
    log(LogLevel::info, "executor", "no LISTEN: finding jobs by polling",
        {field("poll_interval_ms", s.opt.poll_interval.count())});
  }
  if (s.opt.listen) {
    const std::string url =
        s.opt.listen_url.empty() ? s.client.pool().config().url : s.opt.listen_url;
    s.listener = std::make_unique<queue::Listener>(url, s.client.notify_channel(),
                                                   [&s](const std::string& q) { s.wake(q); });
  }
}

void Executor::stop_fetching() {
  Impl& s = *impl_;
  s.fetching = false;
  s.fetch_stop = true;
  for (auto& l : s.loops) {
    std::lock_guard lock(l->m);
    l->fetch_cv.notify_all();
  }
}

int Executor::in_flight() const {
  int n = 0;
  if (!impl_) return 0;
  for (auto& l : impl_->loops) {
    std::lock_guard lock(l->m);
    // A claim still waiting for the database counts its slots: shutdown waits for it (up to the
    // timeout), so jobs it brings back are run or failed back, never left active.
    n += l->busy + l->unsettled;
  }
  return n;
}

int Executor::fail_back_running() {
  Impl& s = *impl_;
  int n = 0;
  const auto fail_back = [&](QueueLoop& loop, const queue::Job& job, bool releases) {
    Outcome o;
    o.kind = Outcome::Kind::fail;
    o.settle = {job.id, job.retry_count,
                queue::error_output("Error", "yesod-worker shut down while active",
                                    "Error: yesod-worker shut down while active")};
    s.push_outcome(loop, std::move(o), releases);
    ++n;
  };
  for (auto& l : s.loops) {
    std::deque<queue::Job> pending;
    {
      std::lock_guard lock(l->m);
      pending.swap(l->pending);
    }
    for (auto& j : pending)
      fail_back(*l, j, true);
  }
  std::vector<std::shared_ptr<Running>> running;
  {
    std::lock_guard lock(s.running_m);
    for (auto& [id, r] : s.running)
      running.push_back(r);
  }
  for (auto& r : running) {
    if (r->settled.exchange(true)) continue;
    r->stop.request_stop();
    if (QueueLoop* loop = s.loop_of(r->job.queue)) fail_back(*loop, r->job, false);
  }
  if (n > 0)
    log(LogLevel::warn, "executor", "failed back running jobs as retryable", {field("jobs", n)});
  return n;
}

bool Executor::join(milliseconds grace) {
  Impl& s = *impl_;
  stop_fetching();
  bool all_returned = true;
  // Idle threads leave as soon as they see the stop flags, but not within zero time: without
  // this floor a join(0) (the destructor's) found them still alive, abandoned every thread and
  // leaked Impl while the threads still referred to the caller's client.
  const auto until = SteadyTime::now() + std::max(grace, milliseconds(2000));
  // Fetch loops leave at once unless a statement holds them (behind a starved pooler it waits
  // for minutes); then they are abandoned, and so are the jobs a late claim would bring: the
  // process exits soon after, closing the connection, so a claim still queued in a pooler never
  // runs, and one already running leaves its jobs to expire and retry.
  const auto fetch_until = SteadyTime::now() + milliseconds(500);
  const int settlers_per_loop = std::max(1, s.opt.settlers);
  std::map<const QueueLoop*, int> abandoned_fetchers;
  for (auto& l : s.loops) {
    std::unique_lock lock(l->m);
    if (!l->work_cv.wait_until(lock, fetch_until,
                               [&] { return l->loops_alive <= settlers_per_loop; })) {
      all_returned = false;
      abandoned_fetchers[l.get()] = l->loops_alive - settlers_per_loop;
      log(LogLevel::warn, "executor",
          "a fetch is still waiting for the database; not waiting for it",
          {field("queue", l->name)});
    }
  }
  s.workers_stop = true;
  for (auto& l : s.loops) {
    std::unique_lock lock(l->m);
    l->work_cv.notify_all();
    if (!l->work_cv.wait_until(lock, until, [&] { return l->workers_alive == 0; }))
      all_returned = false;
  }
  {
    std::lock_guard lock(s.deadline_m);
    s.settle_deadline = SteadyTime::now() + std::chrono::seconds(10);
  }
  s.settlers_stop = true;
  // Pending settles get the settle deadline (10 s) to be written; a settle thread blocked in a
  // statement past it is abandoned too.
  const auto settle_until = SteadyTime::now() + std::chrono::seconds(11);
  for (auto& l : s.loops) {
    std::unique_lock lock(l->m);
    l->settle_cv.notify_all();
    const int left_behind = abandoned_fetchers[l.get()];
    if (!l->work_cv.wait_until(lock, settle_until, [&] { return l->loops_alive <= left_behind; }))
      all_returned = false;
  }
  s.background_stop = true;
  // The monitor and the sweeper may be inside a statement too: bounded like the loops.
  const auto background_until = SteadyTime::now() + milliseconds(500);
  while (s.background_alive > 0 && SteadyTime::now() < background_until)
    std::this_thread::sleep_for(milliseconds(10));
  if (s.background_alive > 0) {
    all_returned = false;
    if (s.monitor.joinable()) s.monitor.detach();
    if (s.sweeper.joinable()) s.sweeper.detach();
  }
  if (s.monitor.joinable()) s.monitor.join();
  if (s.sweeper.joinable()) s.sweeper.join();
  s.listener.reset();
  if (all_returned) {
    for (auto& l : s.loops) {
      for (auto* group : {&l->fetchers, &l->settlers, &l->workers})
        for (auto& t : *group)
          if (t.joinable()) t.join();
    }
    return true;
  }
  // Handlers that ignore ctx.stop keep their threads; they hold pointers into Impl, so it is kept
  // alive (leaked) until the process exits.
  log(LogLevel::warn, "executor", "threads still busy at exit; abandoning them");
  for (auto& l : s.loops) {
    for (auto* group : {&l->fetchers, &l->settlers, &l->workers})
      for (auto& t : *group)
        if (t.joinable()) t.detach();
  }
  {
    std::lock_guard lock(abandoned_m);
    if (abandoned_impls == nullptr) abandoned_impls = new std::vector<void*>();
    abandoned_impls->push_back(impl_.release());
  }
  return false;
}

ExecutorStats Executor::stats() const {
  if (!impl_) return {};
  const Impl& s = *impl_;
  return {s.fetched, s.completed, s.failed, s.dead, s.lost, s.expired, s.swept, s.settles_lost};
}

}  // namespace yw::worker
