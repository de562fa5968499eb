#pragma once
#include <exception>
// The command line (design.md §4). Each subcommand lives in its own file and registers itself
// through one add_*_command function; main.cpp only wires them together.
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "yw/worker/config.hpp"

namespace yw::worker::cli {

// Exit codes: 0 success, 1 a file or job failed, 2 bad usage or configuration.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

struct Context {
  Settings settings;                         // defaults < .env < environment
  std::map<std::string, std::string> flags;  // env name -> value given as a flag
  std::function<int()> action;               // set by the chosen subcommand's callback
};

// Adds one flag per setting to `sub` (all settings when `envs` is empty), showing the effective
// default (from .env and the environment) in --help; secrets show only whether they are set.
void add_setting_flags(CLI::App& sub, Context& ctx, const std::vector<std::string_view>& envs = {});
// Applies flags over the settings and validates; throws yw::ConfigError.
WorkerConfig resolve_config(Context& ctx);
// Installs the log sink: JSON lines in production, pretty (coloured on a terminal) otherwise.
void setup_logging(const WorkerConfig& config);
// Rethrows `error`, a failure of the first statements on DATABASE_URL: configuration errors as
// they are, a connection failure as "database: cannot connect to <masked URL>: ...".
[[noreturn]] void rethrow_database_error(std::exception_ptr error, const WorkerConfig& config);

void add_run_command(CLI::App& app, Context& ctx);
void add_send_command(CLI::App& app, Context& ctx);
void add_fingerprint_command(CLI::App& app, Context& ctx);
void add_metadata_command(CLI::App& app, Context& ctx);
void add_separate_command(CLI::App& app, Context& ctx);
void add_match_command(CLI::App& app, Context& ctx);

// Runs the whole CLI; returns the process exit code. Never throws.
int main(int argc, char** argv);

}  // namespace yw::worker::cli
