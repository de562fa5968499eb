#include "cli/cli.hpp"

#include "yw/queue/client.hpp"

#include <unistd.h>

#include <cstdio>

#include "yw/common/error.hpp"
#include "yw/common/log.hpp"
#include "yw/worker/build_info.hpp"

namespace yw::worker::cli {

void add_setting_flags(CLI::App& sub, Context& ctx, const std::vector<std::string_view>& envs) {
  for (const auto& spec : setting_specs()) {
    if (!envs.empty() && std::find(envs.begin(), envs.end(), spec.env) == envs.end()) continue;
    const std::string env(spec.env);
    auto* opt = sub.add_option(fmt::format("--{}", spec.flag), ctx.flags[env],
                               fmt::format("{} [env {}]", spec.help, spec.env));
    const std::string& current = ctx.settings.get(env);
    if (spec.secret) {
      opt->default_str(current.empty() ? "" : "(set)");
    } else {
      opt->default_str(current);
    }
    opt->type_name("TEXT");
  }
}

WorkerConfig resolve_config(Context& ctx) {
  for (const auto& [env, value] : ctx.flags) {
    // CLI11 leaves an option's bound string empty when the flag was not given; a flag given
    // as an empty string (--model "") is indistinguishable and also means "keep the default".
    if (!value.empty()) ctx.settings.set(env, value, Settings::Source::flag);
  }
  return WorkerConfig::from_settings(ctx.settings);
}

void setup_logging(const WorkerConfig& config) {
  if (config.production) {
    set_log_sink(make_json_sink(stderr));
  } else {
    set_log_sink(make_pretty_sink(stderr, isatty(STDERR_FILENO) != 0));
  }
  if (config.log_level == "debug")
    set_log_level(LogLevel::debug);
  else if (config.log_level == "warn")
    set_log_level(LogLevel::warn);
  else if (config.log_level == "error")
    set_log_level(LogLevel::error);
  else
    set_log_level(LogLevel::info);
}

int main(int argc, char** argv) {
  Context ctx;
  try {
    ctx.settings = Settings::load(".env");
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "yesod-worker: %s\n", e.what());
    return kExitUsage;
  }

  CLI::App app{
      "yesod-worker: pg-boss jobs for audio fingerprints, stems and metadata, on GPUs "
      "or CPUs"};
  app.set_version_flag("--version", build_info().describe());
  app.require_subcommand(1);
  app.fallthrough(false);
  add_run_command(app, ctx);
  add_send_command(app, ctx);
  add_fingerprint_command(app, ctx);
  add_metadata_command(app, ctx);
  add_separate_command(app, ctx);
  add_match_command(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0 through this path too.
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  try {
    return ctx.action ? ctx.action() : kExitUsage;
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "yesod-worker: %s\n", mask_secrets(e.what()).c_str());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "yesod-worker: %s\n", mask_secrets(e.what()).c_str());
    return kExitFailed;
  }
}

void rethrow_database_error(std::exception_ptr error, const WorkerConfig& config) {
  try {
    std::rethrow_exception(error);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    if (!queue::is_connection_error(e)) throw;
    throw Error(fmt::format("database: cannot connect to {}: {}", config.database_url->masked(),
                            mask_secrets(e.what())));
  }
}

}  // namespace yw::worker::cli
