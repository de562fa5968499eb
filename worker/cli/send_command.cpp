// `yesod-worker send QUEUE JSON`: enqueues one job with pg-boss's send() semantics.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/cli.hpp"
#include "yw/common/error.hpp"
#include "yw/queue/client.hpp"
#include "yw/queue/pool.hpp"

namespace yw::worker::cli {
namespace {

struct SendArgs {
  std::string queue;
  std::string data;
  std::string start_after;
  std::string singleton_key;
  int priority = 0;
};

bool is_seconds(const std::string& text) {
  if (text.empty()) return false;
  try {
    std::size_t used = 0;
    const double v = std::stod(text, &used);
    return used == text.size() && v >= 0;
  } catch (const std::exception&) {
    return false;
  }
}

int send_job(const WorkerConfig& config, const SendArgs& args) {
  if (!config.database_url) {
    throw ConfigError(
        "DATABASE_URL: required by `send` (for example "
        "postgresql://postgres:secret@127.0.0.1:5432/postgres)");
  }
  queue::SendJob job;
  try {
    job.data = nlohmann::json::parse(args.data);
  } catch (const nlohmann::json::parse_error& e) {
    throw ConfigError(fmt::format("data: not valid JSON ({})", e.what()));
  }
  job.options["priority"] = args.priority;
  if (!args.start_after.empty()) {
    // Seconds from now, or an ISO 8601 time: the two forms pg-boss's startAfter accepts.
    if (is_seconds(args.start_after)) {
      job.options["startAfter"] = std::stod(args.start_after);
      if (args.start_after.find_first_not_of("0123456789") == std::string::npos)
        job.options["startAfter"] = std::stoll(args.start_after);
    } else if (args.start_after.size() >= 10 && args.start_after[4] == '-' &&
               args.start_after[7] == '-') {
      job.options["startAfter"] = args.start_after;
    } else {
      throw ConfigError(fmt::format("--start-after: '{}' is neither seconds nor an ISO 8601 time",
                                    args.start_after));
    }
  }
  if (!args.singleton_key.empty()) job.options["singletonKey"] = args.singleton_key;

  queue::ConnectionPool pool({.url = config.database_url->original, .max_size = 1});
  queue::PgBossClient client(pool, config.pgboss_schema);
  try {
    client.check_version();
  } catch (const std::exception&) {
    rethrow_database_error(std::current_exception(), config);
  }
  queue::QueueInfo info;
  try {
    info = client.queue(args.queue);
  } catch (const ConfigError&) {
    throw;
  } catch (const Error& e) {
    throw ConfigError(fmt::format("queue: {}", e.what()));
  }
  const auto id = client.send(args.queue, job);
  if (!id) {
    std::printf("not sent: queue '%s' (policy %s) refused the job%s\n", args.queue.c_str(),
                info.policy.c_str(),
                args.singleton_key.empty()
                    ? ""
                    : fmt::format(" (singleton key '{}')", args.singleton_key).c_str());
    return kExitFailed;
  }
  std::printf("%s\n", id->c_str());
  return kExitOk;
}

}  // namespace

void add_send_command(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("send", "Send one job to a pg-boss queue");
  static SendArgs args;
  sub->add_option("queue", args.queue, "queue name")->required();
  sub->add_option("data", args.data, "job data as JSON")->required();
  sub->add_option("--priority", args.priority, "job priority (higher first)")
      ->capture_default_str();
  sub->add_option("--start-after", args.start_after,
                  "delay in seconds, or an ISO 8601 time (default: now)")
      ->capture_default_str();
  sub->add_option("--singleton-key", args.singleton_key, "pg-boss singleton key (default: none)")
      ->capture_default_str();
  add_setting_flags(*sub, ctx, {"DATABASE_URL", "PGBOSS_SCHEMA"});
  sub->callback([&ctx] {
    ctx.action = [&ctx] {
      const WorkerConfig config = resolve_config(ctx);
      setup_logging(config);
      return send_job(config, args);
    };
  });
}

}  // namespace yw::worker::cli
