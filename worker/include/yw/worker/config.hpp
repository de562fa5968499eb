#pragma once
// The worker's configuration (design.md §5). Every setting has one environment variable and one
// flag; sources are layered as: built-in default < .env file < real environment < flag. Values
// are kept as text until validate() parses them all at once, so a bad value is reported with
// the variable's name whichever source it came from.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "yw/common/log.hpp"
#include "yw/kernels/device.hpp"
#include "yw/queue/job.hpp"

namespace yw::worker {

// One setting: its environment name, its flag, built-in default and help text.
struct SettingSpec {
  std::string_view env;
  std::string_view flag;  // without dashes
  std::string_view default_value;
  std::string_view help;
  bool secret = false;  // never printed in clear
};

// All settings, in the order the README's table and --help show them.
const std::vector<SettingSpec>& setting_specs();
const SettingSpec* find_setting(std::string_view env);

// Raw settings: env name -> text, plus where each value came from (for diagnostics).
class Settings {
 public:
  enum class Source { fallback, dotenv, environment, flag };

  // Built-in defaults, then `dotenv_path` (missing file is fine), then the process environment.
  static Settings load(const std::string& dotenv_path = ".env");
  // Same, from explicit maps (tests).
  static Settings from(const std::map<std::string, std::string>& dotenv,
                       const std::map<std::string, std::string>& environment);

  void set(std::string_view env, std::string value, Source source);
  const std::string& get(std::string_view env) const;
  Source source(std::string_view env) const;
  bool is_set(std::string_view env) const;  // given by any source other than the fallback

 private:
  std::map<std::string, std::pair<std::string, Source>, std::less<>> values_;
};

// Parses a dotenv file's text: KEY=VALUE lines, optional `export `, # comments, single or double
// quotes (double quotes honour \n and \"). Throws yw::ConfigError naming the line when malformed.
std::map<std::string, std::string> parse_dotenv(std::string_view text,
                                                std::string_view origin = ".env");

// A parsed PostgreSQL connection URI. `masked()` hides the password (design.md §5).
struct DatabaseUrl {
  std::string original;
  std::string scheme, user, password, host, port, database, query;
  std::string masked() const;
};
// Accepts postgres:// and postgresql:// URIs. Throws ConfigError naming DATABASE_URL otherwise.
DatabaseUrl parse_database_url(std::string_view text);
// yw::mask_secrets (yw/common/log.hpp), named here too for the worker's code.
using yw::mask_secrets;

struct WorkerConfig {
  std::optional<DatabaseUrl> database_url;  // required by `run` and `send`
  std::string pgboss_schema = "pgboss";
  std::string supabase_url;
  std::string supabase_anon_key;
  std::string supabase_service_role_key;
  std::string storage_bucket;
  bool production = false;                       // NODE_ENV=production: JSON logs
  int concurrency = 4;                           // jobs in flight per queue
  std::map<std::string, int> queue_concurrency;  // per-queue overrides
  // pg-boss groupConcurrency per queue (YW_GROUP_CONCURRENCY); a queue not listed is unlimited.
  std::map<std::string, queue::GroupConcurrency> group_concurrency;
  DeviceRequest device;
  int batch_max = 16;
  int batch_delay_ms = 25;
  std::string model;  // empty: the built-in separator
  std::vector<std::string> input_roots;
  std::string output_uri = "file://./data/outputs";
  double shutdown_timeout_s = 10.0;
  // YW_DB_POOL_MODE: "auto" (probe the server), "session" or "transaction" (a transaction-mode
  // pooler: no named prepared statements, no LISTEN, polling).
  std::string db_pool_mode = "auto";
  std::string metrics_addr = "127.0.0.1:9464";  // empty or "off": no listener
  std::vector<std::string> queues;              // empty: every queue with a handler
  std::string log_level = "info";
  std::string catalogue_schema = "yw_catalogue";  // empty ("off"): no catalogue, no matching
  bool catalogue_clip_index = true;

  // Parses and checks every setting; throws yw::ConfigError naming the first bad variable.
  static WorkerConfig from_settings(const Settings& settings);
  // Concurrency for one queue: its override, else `concurrency`.
  int concurrency_for(std::string_view queue) const;
};

}  // namespace yw::worker
