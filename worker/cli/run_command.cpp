// `yesod-worker run`: the long-running worker.
#include <chrono>

#include <pqxx/pqxx>

#include "cli/cli.hpp"
#include "yw/common/error.hpp"
#include "yw/common/log.hpp"
#include "yw/kernels/device.hpp"
#include "yw/queue/pool.hpp"
#include "yw/queue/schema.hpp"
#include "yw/worker/build_info.hpp"
#include "yw/worker/shutdown.hpp"

namespace yw::worker::cli {
namespace {

// The queues this worker serves by default (design.md §2).
const std::vector<std::string>& default_queues() {
  static const std::vector<std::string> queues = {"process_new_record", "extract_metadata",
                                                  "fingerprint_audio", "separate_stems"};
  return queues;
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

  queue::ConnectionPool pool(
      {.url = config.database_url->original, .max_size = static_cast<int>(queues.size()) + 2});
  int version = 0;
  try {
    auto conn = pool.acquire();
    version = queue::check_schema_version(*conn, config.pgboss_schema);
  } catch (const pqxx::broken_connection& e) {
    throw Error(fmt::format("database: cannot connect to {}: {}", config.database_url->masked(),
                            mask_secrets(e.what())));
  }

  const std::string device_text =
      device.is_cuda() ? fmt::format("{} {}", device.to_string(), inventory.describe(device.index))
                       : device.to_string();
  log(LogLevel::info, "worker", "started",
      {field("version", build_info().version), field("cuda_build", build_info().cuda),
       field("torch_build", build_info().torch), field("device", device_text),
       field("database", config.database_url->masked()), field("schema", config.pgboss_schema),
       field("schema_version", version), field("queues", join(queues)),
       field("concurrency", config.concurrency)});

  ShutdownController shutdown(SteadyClock::instance(),
                              std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(config.shutdown_timeout_s)));
  SignalWatcher signals(shutdown);
  while (true) {
    // No executor is attached yet, so nothing is ever in flight.
    const ShutdownPhase phase = shutdown.update(/*jobs_in_flight=*/0);
    if (phase == ShutdownPhase::stopped) break;
    if (phase == ShutdownPhase::failing_back) shutdown.failed_back();
    shutdown.wait_until(std::chrono::steady_clock::now() + std::chrono::milliseconds(200));
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
