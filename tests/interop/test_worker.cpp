// A stand-alone C++ worker for the interop tests and the queue benchmark: the real executor with a
// test handler, in its own process so a test can kill -9 it.
//
//   yw_test_worker URL SCHEMA QUEUE HANDLER [CONCURRENCY] [SWEEP_MS] [POLL_MS]
//     HANDLER: noop (returns null), echo ({"echo": data, "by": "<pid>"}), sleep:MS (sleeps, then
//     echo), latency (records now - data.sent_at in ms)
// Creates QUEUE (and QUEUE__dead) when absent, writes "ready" to stderr once working, stops
// gracefully on SIGTERM/SIGINT, then prints {"handled": N, "latencies_ms": [...]} on stdout.
// With YW_BENCH_EXPECT=N it stops by itself once N jobs are completed (committed) and adds
// "seconds": the time from the executor's start to that moment.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "yw/common/log.hpp"
#include "yw/queue/client.hpp"
#include "yw/worker/executor.hpp"
#include "yw/worker/shutdown.hpp"

int main(int argc, char** argv) {
  using namespace yw;
  using nlohmann::json;
  if (argc < 5) {
    std::fprintf(stderr,
                 "usage: yw_test_worker URL SCHEMA QUEUE HANDLER [CONCURRENCY] [SWEEP_MS] "
                 "[POLL_MS]\n");
    return 2;
  }
  const std::string url = argv[1], schema = argv[2], queue_name = argv[3], handler = argv[4];
  const int concurrency = argc > 5 ? std::stoi(argv[5]) : 4;
  const int sweep_ms = argc > 6 ? std::stoi(argv[6]) : 1000;
  const int poll_ms = argc > 7 ? std::stoi(argv[7]) : 500;
  if (const char* level = std::getenv("YW_TEST_LOG"); level == nullptr) {
    set_log_level(LogLevel::warn);
  }

  worker::ShutdownController shutdown(SteadyClock::instance(), std::chrono::seconds(10));
  worker::SignalWatcher signals(shutdown);

  std::mutex m;
  std::uint64_t handled = 0;
  std::vector<double> latencies;
  const std::string by = std::to_string(getpid());
  int sleep_ms = 0;
  if (handler.rfind("sleep:", 0) == 0) sleep_ms = std::stoi(handler.substr(6));

  worker::HandlerRegistry registry;
  registry.add(queue_name, [&](const json& data, worker::JobContext& ctx) -> json {
    if (handler == "latency" && data.contains("sent_at")) {
      const double now_ms = std::chrono::duration<double, std::milli>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
      std::lock_guard lock(m);
      latencies.push_back(now_ms - data["sent_at"].get<double>());
    }
    {
      std::lock_guard lock(m);
      ++handled;
    }
    if (sleep_ms > 0) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(sleep_ms);
      while (std::chrono::steady_clock::now() < until && !ctx.stop.stop_requested())
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (handler == "noop" || handler == "latency") return nullptr;
    return json{{"echo", data}, {"by", by}};
  });

  // YW_FETCHERS / YW_SETTLERS: fetch and settle loops (benchmark tuning).
  const int fetchers = std::getenv("YW_FETCHERS") ? std::stoi(std::getenv("YW_FETCHERS")) : 1;
  const int settlers = std::getenv("YW_SETTLERS") ? std::stoi(std::getenv("YW_SETTLERS")) : 1;
  queue::ConnectionPool pool({.url = url, .max_size = fetchers + settlers + 3});
  queue::PgBossClient client(pool, schema);
  worker::ExecutorOptions opt;
  opt.queues = {queue_name};
  opt.concurrency = concurrency;
  opt.max_batch = std::getenv("YW_MAX_BATCH") ? std::stoi(std::getenv("YW_MAX_BATCH")) : 100;
  opt.fetchers = fetchers;
  opt.settlers = settlers;
  opt.poll_interval = std::chrono::milliseconds(poll_ms);
  opt.sweep_interval = std::chrono::milliseconds(sweep_ms);
  // Set-up pg-boss's own worker does before work() is called (queues exist, pool connections
  // open) is done before the clock starts.
  client.create_queue(queue_name + "__dead");
  client.create_queue(queue_name, {{"deadLetter", queue_name + "__dead"}});
  opt.create_queues = false;
  {
    std::vector<queue::PooledConnection> warm;
    for (int i = 0; i < fetchers + settlers + 1; ++i)
      warm.push_back(pool.acquire());
  }
  worker::Executor executor(client, registry, opt);
  const char* expect_env = std::getenv("YW_BENCH_EXPECT");
  const std::uint64_t expect = expect_env != nullptr ? std::stoull(expect_env) : 0;
  const auto t0 = std::chrono::steady_clock::now();
  double seconds = 0;
  executor.start();
  std::fprintf(stderr, "ready\n");
  std::fflush(stderr);
  while (true) {
    if (expect > 0 && seconds == 0 && executor.stats().completed >= expect) {
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      shutdown.request_stop("benchmark done");
    }
    const auto phase = shutdown.update(executor.in_flight());
    if (phase == worker::ShutdownPhase::stopped) break;
    if (phase != worker::ShutdownPhase::running) executor.stop_fetching();
    if (phase == worker::ShutdownPhase::failing_back) {
      executor.fail_back_running();
      shutdown.failed_back();
    }
    shutdown.wait_until(std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(expect > 0 ? 1 : 50));
  }
  executor.join(std::chrono::seconds(2));
  std::lock_guard lock(m);
  std::printf(
      "%s\n",
      json{{"handled", handled}, {"latencies_ms", latencies}, {"seconds", seconds}}.dump().c_str());
  return 0;
}
