// `yesod-worker send`: parses its documented flags; says plainly that it cannot run yet.
#include <cstdio>

#include "cli/cli.hpp"

namespace yw::worker::cli {
namespace {

int not_available(const char* name, const char* issue) {
  std::fprintf(stderr,
               "yesod-worker %s: not available in this build yet (its handler is not "
               "implemented: %s)\n",
               name, issue);
  return kExitUsage;
}

}  // namespace

void add_send_command(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("send", "Send one job to a pg-boss queue");
  static std::string queue, data, start_after, singleton_key;
  static int priority = 0;
  sub->add_option("queue", queue, "queue name")->required();
  sub->add_option("data", data, "job data as JSON")->required();
  sub->add_option("--priority", priority, "job priority (higher first)")->capture_default_str();
  sub->add_option("--start-after", start_after, "delay: seconds, or an ISO 8601 time");
  sub->add_option("--singleton-key", singleton_key, "singleton key");
  add_setting_flags(*sub, ctx, {"DATABASE_URL", "PGBOSS_SCHEMA"});
  sub->callback([&ctx] { ctx.action = [] { return not_available("send", "queue layer"); }; });
}

}  // namespace yw::worker::cli
