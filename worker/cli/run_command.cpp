// `yesod-worker run`: the long-running worker.
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <pqxx/pqxx>

#include "cli/cli.hpp"
#include "yw/common/device_health.hpp"
#include "yw/common/error.hpp"
#include "yw/common/log.hpp"
#include "yw/common/readiness.hpp"
#include "yw/kernels/device.hpp"
#include "yw/queue/client.hpp"
#include "yw/queue/pool.hpp"
#include "yw/queue/schema.hpp"
#include "yw/worker/build_info.hpp"
#include "yw/worker/catalogue.hpp"
#include "yw/worker/executor.hpp"
#include "yw/worker/handler.hpp"
#include "yw/worker/http_server.hpp"
#include "yw/worker/metrics.hpp"
#include "yw/worker/shutdown.hpp"
#include "yw/worker/storage.hpp"
#include "yw/worker/supabase_errors.hpp"

namespace yw::worker::cli {
namespace {

// The queues this worker serves by default (design.md §2).
const std::vector<std::string>& default_queues() {
  static const std::vector<std::string> queues = {"process_new_record", "extract_metadata",
                                                  "fingerprint_audio", "separate_stems",
                                                  "match_fingerprint"};
  return queues;
}

// What abandoned threads still use when the worker exits without them: reachable from here (so
// nothing frees it under them, and leak checkers see it as the live object it is), never freed.
struct Abandoned {
  std::unique_ptr<queue::ConnectionPool> pool;
  std::unique_ptr<queue::PgBossClient> client;
};
Abandoned* abandoned = nullptr;

// The queues whose handlers read job audio from storage, and whether they also write artifacts:
// their claims wait while a storage fault of that kind lasts (supabase_errors.hpp).
std::string storage_hold_for(const std::string& queue) {
  if (queue == "fingerprint_audio") return storage_claim_hold(false);
  if (queue == "extract_metadata" || queue == "separate_stems") return storage_claim_hold(true);
  return {};
}

// probe_storage every kStorageProbeInterval, on its own thread, until destroyed.
class StorageProber {
 public:
  explicit StorageProber(const WorkerConfig& config) : thread_([this, &config] { run(config); }) {}
  StorageProber(const StorageProber&) = delete;
  StorageProber& operator=(const StorageProber&) = delete;
  ~StorageProber() {
    {
      std::lock_guard lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void run(const WorkerConfig& config) {
    std::unique_lock lock(m_);
    while (!cv_.wait_for(lock, kStorageProbeInterval, [this] { return stop_; })) {
      lock.unlock();
      probe_storage(config);
      lock.lock();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// The database's answer for /readyz, asked on a thread of its own: behind a starved pooler a
// statement waits in the pooler's queue for minutes (real-world.md §3), and readiness must say so
// within seconds instead of hanging the probe that asked. A readiness request starts a check
// unless one is running (it then shares that one's answer), and waits for it up to kAnswerWithin.
class DatabaseProbe {
 public:
  static constexpr std::chrono::seconds kAnswerWithin{2};

  explicit DatabaseProbe(queue::PgBossClient& client)
      : state_(std::make_shared<State>()), pool_name_(client.pool().config().name) {
    thread_ = std::thread([s = state_, &client] { run(*s, client); });
  }
  DatabaseProbe(const DatabaseProbe&) = delete;
  DatabaseProbe& operator=(const DatabaseProbe&) = delete;
  ~DatabaseProbe() { finish(std::chrono::milliseconds(0)); }

  // One line when the database did not answer (in time), else empty.
  std::string problem() {
    using Clock = std::chrono::steady_clock;
    std::unique_lock lock(state_->m);
    State& s = *state_;
    if (s.stop) return {};
    const auto now = Clock::now();
    if (!s.requested && !s.running) {
      s.requested = true;
      s.asked = now;
      s.cv.notify_all();
    }
    const auto waiting_since = s.running ? s.started : s.asked;
    if (s.requested || s.running) {
      s.cv.wait_until(lock, waiting_since + kAnswerWithin,
                      [&] { return s.stop || (!s.requested && !s.running); });
    }
    if (s.requested || s.running) {
      const auto waited =
          std::chrono::duration<double>(Clock::now() - (s.running ? s.started : s.asked)).count();
      return fmt::format(
          "no answer for {:.0f} s from the {}: a pooler without a free server connection, or a "
          "lock, holds the worker's statements",
          waited, pool_name_);
    }
    return s.error;
  }

  // Stops the thread; false when it is still inside a statement after `grace` (it is then
  // detached and still uses the client, which the caller must keep alive until exit).
  bool finish(std::chrono::milliseconds grace) {
    if (!thread_.joinable()) return exited_cleanly_;
    std::unique_lock lock(state_->m);
    state_->stop = true;
    state_->cv.notify_all();
    const bool exited = state_->cv.wait_for(lock, grace, [&] { return state_->exited; });
    lock.unlock();
    if (exited) {
      thread_.join();
    } else {
      thread_.detach();
    }
    exited_cleanly_ = exited;
    return exited;
  }

 private:
  struct State {
    std::mutex m;
    std::condition_variable cv;
    bool requested = false, running = false, stop = false, exited = false;
    std::chrono::steady_clock::time_point asked, started;
    std::string error;
  };

  static void run(State& s, queue::PgBossClient& client) {
    std::unique_lock lock(s.m);
    while (true) {
      s.cv.wait(lock, [&] { return s.stop || s.requested; });
      if (s.stop) break;
      s.requested = false;
      s.running = true;
      s.started = std::chrono::steady_clock::now();
      lock.unlock();
      std::string error;
      try {
        client.check_version();
      } catch (const std::exception& e) {
        error = mask_secrets(e.what());
      }
      lock.lock();
      s.running = false;
      s.error = std::move(error);
      s.cv.notify_all();
    }
    s.exited = true;
    s.cv.notify_all();
  }

  std::shared_ptr<State> state_;
  std::string pool_name_;
  std::thread thread_;
  bool exited_cleanly_ = true;
};

// GET /metrics, /healthz and /readyz (design.md §6). Readiness: the database answers with the
// supported schema version, the device is still usable, the worker is not shutting down, and no
// named reason of yw::Readiness is set.
std::unique_ptr<HttpServer> start_ops_listener(const WorkerConfig& config,
                                               queue::PgBossClient& client, DatabaseProbe& database,
                                               const queue::ConnectionPool& pool,
                                               const ShutdownController& shutdown,
                                               const Device& device,
                                               const std::vector<std::string>& served) {
  if (config.metrics_addr.empty()) return nullptr;
  std::map<std::string, HttpServer::Handler> routes;
  routes["/healthz"] = [] { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}; };
  routes["/readyz"] = [&database, &shutdown, device] {
    std::string problems;
    if (!shutdown.fetching_allowed()) problems += "shutting down\n";
    if (const std::string db = database.problem(); !db.empty())
      problems += fmt::format("database: {}\n", db);
    if (const auto fault = DeviceHealth::global().problem()) {
      problems += fmt::format("device: unhealthy: {}\n", *fault);
    } else if (device.is_cuda() && cuda_inventory().count <= device.index) {
      problems += fmt::format("device: {} is no longer usable\n", device.to_string());
    }
    // Named reasons set by the parts of the worker while their trouble lasts (storage's
    // configuration, the connection pool, ...): each one line.
    for (const auto& [name, reason] : Readiness::global().reasons())
      problems += fmt::format("{}: {}\n", name, reason);
    if (problems.empty()) return HttpResponse{200, "text/plain; charset=utf-8", "ready\n"};
    return HttpResponse{503, "text/plain; charset=utf-8", problems};
  };
  routes["/metrics"] = [&client, &pool, served] {
    auto& m = Metrics::global();
    m.set("yw_db_reconnects_total", {}, static_cast<double>(pool.reconnects()));
    for (const auto& q : served) {
      try {
        m.set("yw_queue_depth", {{"queue", q}}, static_cast<double>(client.queue_depth(q)));
      } catch (const std::exception&) {
        // An unreachable database shows in /readyz; the last known depth stays.
      }
    }
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", m.render()};
  };
  try {
    auto server = std::make_unique<HttpServer>(config.metrics_addr, std::move(routes));
    log(LogLevel::info, "worker", "metrics listening",
        {field("addr", config.metrics_addr), field("port", server->port())});
    return server;
  } catch (const Error& e) {
    throw ConfigError(fmt::format("YW_METRICS_ADDR (--metrics-addr): {}", e.what()));
  }
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items)
    out += (out.empty() ? "" : ",") + i;
  return out;
}

int run_worker(const WorkerConfig& config) {
  if (!config.database_url) {
    throw ConfigError(
        "DATABASE_URL: required by `run` (for example "
        "postgresql://postgres:secret@127.0.0.1:5432/postgres); scripts/dev.sh starts a local "
        "database and sets it");
  }
  queue::validate_schema_name(config.pgboss_schema);
  const auto queues = config.queues.empty() ? default_queues() : config.queues;
  for (const auto& q : queues) {
    if (std::find(default_queues().begin(), default_queues().end(), q) == default_queues().end()) {
      throw ConfigError(fmt::format("YW_QUEUES (--queues): no handler for queue '{}' (known: {})",
                                    q, join(default_queues())));
    }
  }

  // The device is chosen once, before any job, and logged once (style.md habit 3).
  const CudaInventory inventory = cuda_inventory();
  const Device device = resolve_device(config.device, inventory);
  if (config.device.is_auto && !device.is_cuda()) {
    log(LogLevel::info, "worker",
        fmt::format("no CUDA device, using CPU{}{}", inventory.reason.empty() ? "" : ": ",
                    inventory.reason));
  }

  // Behind a transaction-mode pooler (Supabase's port 6543) server connections change between
  // transactions: named prepared statements and LISTEN cannot be kept there (real-world.md §3),
  // so the worker sends statements unnamed and polls.
  queue::PoolerMode pooler = config.db_pool_mode == "transaction" ? queue::PoolerMode::transaction
                                                                  : queue::PoolerMode::session;
  // Per served queue its fetch loops (two for process_new_record, which runs its batches in
  // transactions) and a settle loop, each on a connection of its own, plus the monitor, the
  // sweeper and the start-up checks; LISTEN has its own connection outside the pool.
  int pool_size = 3;
  {
    const ExecutorOptions sizing = ExecutorOptions::from_config(config);
    for (const auto& q : queues)
      pool_size += sizing.fetch_loops(q) + std::max(1, sizing.settlers);
  }

  // Before any thread starts (handlers, executor): every thread inherits the blocked signals.
  ShutdownController shutdown(SteadyClock::instance(),
                              std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(config.shutdown_timeout_s)));
  SignalWatcher signals(shutdown);

  // The start-up checks run on their own thread so SIGTERM is honoured while they wait: behind a
  // starved pooler a statement waits in the pooler's queue for minutes (real-world.md §3).
  struct Startup {
    std::mutex m;
    bool done = false;
    std::exception_ptr error;
    queue::PoolerMode pooler = queue::PoolerMode::session;
    std::unique_ptr<queue::ConnectionPool> pool;
    std::unique_ptr<queue::PgBossClient> client;
    int version = 0;
  };
  auto startup = std::make_shared<Startup>();
  startup->pooler = pooler;
  // Copies, not references: on an early exit the thread outlives this function's locals.
  std::thread([startup, pool_size, url = config.database_url->original, mode = config.db_pool_mode,
               schema = config.pgboss_schema] {
    try {
      if (mode == "auto") startup->pooler = queue::probe_pooler_mode(url);
      startup->pool = std::make_unique<queue::ConnectionPool>(
          queue::PoolConfig{.url = url,
                            .max_size = pool_size,
                            .named_statements = startup->pooler == queue::PoolerMode::session,
                            .name = fmt::format("worker's pool ({} connections)", pool_size)});
      startup->client = std::make_unique<queue::PgBossClient>(*startup->pool, schema);
      startup->version = startup->client->check_version();
    } catch (...) {
      startup->error = std::current_exception();
    }
    std::lock_guard lock(startup->m);
    startup->done = true;
  }).detach();
  while (true) {
    {
      std::lock_guard lock(startup->m);
      if (startup->done) break;
    }
    if (!shutdown.fetching_allowed()) {
      // The thread keeps `startup` alive and uses only its own copies.
      log(LogLevel::warn, "worker",
          "shutdown requested before the database answered the start-up checks; exiting",
          {field("database", config.database_url->masked())});
      return kExitOk;
    }
    shutdown.wait_until(std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
  }
  if (startup->error) rethrow_database_error(startup->error, config);
  pooler = startup->pooler;
  const int version = startup->version;
  std::unique_ptr<queue::ConnectionPool>& pool_holder = startup->pool;
  std::unique_ptr<queue::PgBossClient>& client_holder = startup->client;
  queue::ConnectionPool& pool = *pool_holder;
  queue::PgBossClient& client = *client_holder;

  // The catalogue schema is created or migrated at start, and the in-memory index loaded, by
  // workers that serve a queue using it (a bad YW_CATALOGUE_SCHEMA stops the worker here). After
  // the start-up checks, so an unreachable database is reported as such, once.
  if (std::find(queues.begin(), queues.end(), "fingerprint_audio") != queues.end() ||
      std::find(queues.begin(), queues.end(), "match_fingerprint") != queues.end()) {
    try {
      Catalogue::shared(config);
    } catch (...) {
      rethrow_database_error(std::current_exception(), config);
    }
  }

  // Queues whose handler has not landed in this build are named and skipped, not fatal.
  HandlerRegistry registry;
  register_all_handlers(registry);
  std::vector<std::string> served;
  for (const auto& q : queues) {
    if (registry.find(q) != nullptr) {
      served.push_back(q);
    } else {
      log(LogLevel::warn, "worker", "queue has no handler in this build; not served",
          {field("queue", q)});
    }
  }
  if (std::find(served.begin(), served.end(), "separate_stems") != served.end()) {
    open_configured_separator(config, device);
  }
  ExecutorOptions options = ExecutorOptions::from_config(config);
  options.queues = served;
  options.device = device;
  options.claim_hold = storage_hold_for;
  if (pooler == queue::PoolerMode::transaction) {
    options.listen = false;
    log(LogLevel::warn, "worker",
        fmt::format("DATABASE_URL is a transaction-mode pooler: statements are sent unnamed and "
                    "NOTIFY cannot be received; for wake-ups within milliseconds use the pooler's "
                    "session-mode port (5432 on Supabase's pooler) or a direct connection"),
        {field("database", config.database_url->masked())});
  }
  // Only Supabase Storage has faults that hold claims.
  std::optional<StorageProber> prober;
  if (!config.supabase_url.empty()) prober.emplace(config);
  Executor executor(client, registry, options);
  if (!served.empty()) executor.start();
  DatabaseProbe database(client);
  const auto ops = start_ops_listener(config, client, database, pool, shutdown, device, served);

  const std::string device_text =
      device.is_cuda() ? fmt::format("{} {}", device.to_string(), inventory.describe(device.index))
                       : device.to_string();
  log(LogLevel::info, "worker", "started",
      {field("version", build_info().version), field("cuda_build", build_info().cuda),
       field("torch_build", build_info().torch), field("device", device_text),
       field("database", config.database_url->masked()), field("schema", config.pgboss_schema),
       field("schema_version", version), field("queues", join(queues)),
       field("served", join(served)), field("concurrency", config.concurrency)});

  bool device_fault = false;
  while (true) {
    // A sticky device error (device_health.hpp): stop taking jobs, fail back what runs, and exit
    // non-zero so the supervisor restarts the worker with a fresh CUDA context.
    if (!device_fault && DeviceHealth::global().problem()) {
      device_fault = true;
      shutdown.request_stop("device unhealthy");
    }
    const ShutdownPhase phase = shutdown.update(executor.in_flight());
    if (phase == ShutdownPhase::stopped) break;
    if (phase != ShutdownPhase::running) executor.stop_fetching();
    if (phase == ShutdownPhase::failing_back) {
      executor.fail_back_running();
      shutdown.failed_back();
    }
    shutdown.wait_until(std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
  }
  // Failed-back handlers were asked to stop; give them a moment, then leave without them.
  const bool executor_returned = executor.join(std::chrono::seconds(2));
  if (!database.finish(std::chrono::milliseconds(200)) || !executor_returned) {
    abandoned = new Abandoned{std::move(pool_holder), std::move(client_holder)};
  }
  const ExecutorStats stats = executor.stats();
  log(LogLevel::info, "worker", "executor stopped",
      {field("completed", stats.completed), field("failed", stats.failed),
       field("dead", stats.dead), field("lost_claims", stats.lost_claims),
       field("settles_lost", stats.settles_lost)});
  if (const auto fault = DeviceHealth::global().problem()) {
    log(LogLevel::error, "worker", "stopped: device unhealthy", {field("error", *fault)});
    return kExitFailed;
  }
  log(LogLevel::info, "worker", "stopped cleanly");
  return kExitOk;
}

}  // namespace

void add_run_command(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("run", "Work pg-boss queues until SIGINT/SIGTERM");
  add_setting_flags(*sub, ctx);
  sub->callback([&ctx] {
    ctx.action = [&ctx] {
      const WorkerConfig config = resolve_config(ctx);
      setup_logging(config);
      return run_worker(config);
    };
  });
}

}  // namespace yw::worker::cli
