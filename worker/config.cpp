#include "yw/worker/config.hpp"

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "yw/common/error.hpp"

extern char** environ;  // NOLINT(readability-identifier-naming): POSIX name

namespace yw::worker {
namespace {

const std::string kEmpty;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::vector<std::string> split_list(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const auto comma = s.find(',');
    const auto item = trim(s.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

template <typename T>
T parse_number(const Settings& s, std::string_view env, T lo, T hi) {
  const std::string& text = s.get(env);
  const std::string_view t = trim(text);
  T value{};
  const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
  if (t.empty() || ec != std::errc() || ptr != t.data() + t.size() || value < lo || value > hi) {
    const auto* spec = find_setting(env);
    throw ConfigError(fmt::format("{} (--{}): expected {} from {} to {}, got '{}'", env,
                                  spec ? spec->flag : "",
                                  std::is_integral_v<T> ? "an integer" : "a number", lo, hi, text));
  }
  return value;
}

bool valid_queue_name(std::string_view q) {
  if (q.empty() || q.size() > 200) return false;
  for (const char c : q) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.' || c == '/';
    if (!ok) return false;
  }
  return true;
}

// A whole-text integer from 1 to 1024, else nullopt.
std::optional<int> parse_limit(std::string_view text) {
  text = trim(text);
  int n = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || n < 1 || n > 1024)
    return std::nullopt;
  return n;
}

// One YW_GROUP_CONCURRENCY item: queue=N[;tier:N...] (the default limit, then tier limits).
std::pair<std::string, queue::GroupConcurrency> parse_group_item(std::string_view item) {
  const auto bad = [&](std::string_view why) {
    return ConfigError(fmt::format(
        "YW_GROUP_CONCURRENCY (--group-concurrency): {} in '{}'; expected queue=N[;tier:N...] "
        "items separated by commas (N from 1 to 1024)",
        why, item));
  };
  const auto eq = item.find('=');
  if (eq == std::string_view::npos) throw bad("missing '='");
  const std::string queue_name(trim(item.substr(0, eq)));
  if (!valid_queue_name(queue_name)) throw bad("not a valid queue name");
  std::vector<std::string_view> parts;
  for (std::string_view rest = item.substr(eq + 1);;) {
    const auto semi = rest.find(';');
    parts.push_back(rest.substr(0, semi));
    if (semi == std::string_view::npos) break;
    rest.remove_prefix(semi + 1);
  }
  queue::GroupConcurrency g;
  const auto def = parse_limit(parts.front());
  if (!def) throw bad("the default limit is not an integer from 1 to 1024");
  g.default_limit = *def;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const std::string_view tier_item = trim(parts[i]);
    const auto colon = tier_item.find(':');
    if (colon == std::string_view::npos) throw bad("a tier limit without ':'");
    const std::string tier(trim(tier_item.substr(0, colon)));
    if (tier.empty()) throw bad("an empty tier name");
    const auto n = parse_limit(tier_item.substr(colon + 1));
    if (!n) throw bad(fmt::format("tier '{}' limit is not an integer from 1 to 1024", tier));
    if (!g.tiers.emplace(tier, *n).second) throw bad(fmt::format("tier '{}' given twice", tier));
  }
  return {queue_name, std::move(g)};
}

}  // namespace

const std::vector<SettingSpec>& setting_specs() {
  static const std::vector<SettingSpec> specs = {
      {"DATABASE_URL", "database-url", "",
       "PostgreSQL URI holding the pg-boss schema (required by run and send)", true},
      {"PGBOSS_SCHEMA", "schema", "pgboss", "pg-boss schema name"},
      {"YW_DB_POOL_MODE", "db-pool-mode", "auto",
       "auto, session or transaction: how DATABASE_URL's server keeps sessions (auto probes; "
       "transaction: no named statements, no LISTEN)"},
      {"SUPABASE_URL", "supabase-url", "", "Supabase project URL, for supabase:// storage"},
      {"SUPABASE_ANON_KEY", "supabase-anon-key", "",
       "Supabase anon key (storage, when no service role key)", true},
      {"SUPABASE_SERVICE_ROLE_KEY", "supabase-service-role-key", "",
       "Supabase service role key (storage)", true},
      {"YW_STORAGE_BUCKET", "storage-bucket", "", "bucket for metadata.storage_path audio"},
      {"NODE_ENV", "node-env", "development", "`production` selects JSON log lines"},
      {"WORKER_CONCURRENCY", "concurrency", "4", "jobs in flight per queue"},
      {"YW_QUEUE_CONCURRENCY", "queue-concurrency", "",
       "per-queue overrides, e.g. separate_stems=1,fingerprint_audio=16"},
      {"YW_GROUP_CONCURRENCY", "group-concurrency", "",
       "per-queue pg-boss groupConcurrency: queue=N[;tier:N...], e.g. "
       "separate_stems=1;pro:2,fingerprint_audio=4"},
      {"YW_DEVICE", "device", "auto",
       "auto, cpu or cuda:N (cuda:N with no usable device is an error)"},
      {"YW_BATCH_MAX", "batch-max", "16", "most items in one device batch"},
      {"YW_BATCH_DELAY_MS", "batch-delay-ms", "25", "longest wait for a batch to fill, in ms"},
      {"YW_MODEL", "model", "", "TorchScript separator; empty selects the built-in separator"},
      {"YW_INPUT_ROOTS", "input-roots", "./data",
       "comma-separated directories file:// audio may come from"},
      {"YW_OUTPUT_URI", "output-uri", "file://./data/outputs",
       "where artifacts go (file:// or supabase://bucket/prefix)"},
      {"YW_SHUTDOWN_TIMEOUT_S", "shutdown-timeout", "10",
       "seconds running jobs get to finish after SIGINT/SIGTERM"},
      {"YW_METRICS_ADDR", "metrics-addr", "127.0.0.1:9464",
       "host:port of /metrics, /healthz and /readyz; `off` disables"},
      {"YW_QUEUES", "queues", "",
       "comma-separated queues to work; empty means every queue with a handler"},
      {"YW_LOG_LEVEL", "log-level", "info", "debug, info, warn or error"},
      {"YW_CATALOGUE_SCHEMA", "catalogue-schema", "yw_catalogue",
       "schema of the fingerprint catalogue (created by the worker); `off` disables matching"},
      {"YW_CATALOGUE_CLIP_INDEX", "catalogue-clip-index", "on",
       "`on` also indexes every item, so 20 s excerpts are found anywhere (more memory)"},
  };
  return specs;
}

const SettingSpec* find_setting(std::string_view env) {
  for (const auto& s : setting_specs())
    if (s.env == env) return &s;
  return nullptr;
}

std::map<std::string, std::string> parse_dotenv(std::string_view text, std::string_view origin) {
  std::map<std::string, std::string> out;
  int line_no = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    if (line.starts_with("export ")) line = trim(line.substr(7));
    const auto eq = line.find('=');
    const auto key = trim(line.substr(0, eq));
    bool key_ok = eq != std::string_view::npos && !key.empty();
    for (const char c : key)
      key_ok = key_ok && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '_');
    if (!key_ok) {
      throw ConfigError(fmt::format("{}:{}: expected KEY=VALUE, got '{}'", origin, line_no, line));
    }
    std::string_view raw = trim(line.substr(eq + 1));
    std::string value;
    if (!raw.empty() && (raw.front() == '"' || raw.front() == '\'')) {
      const char q = raw.front();
      std::size_t i = 1;
      bool closed = false;
      for (; i < raw.size(); ++i) {
        const char c = raw[i];
        if (c == q) {
          closed = true;
          break;
        }
        if (q == '"' && c == '\\' && i + 1 < raw.size()) {
          const char n = raw[++i];
          value += n == 'n' ? '\n' : n;
        } else {
          value += c;
        }
      }
      if (!closed) {
        throw ConfigError(fmt::format("{}:{}: unterminated quote in {}", origin, line_no, key));
      }
    } else {
      // An unquoted value ends at a " #" comment.
      const auto hash = raw.find(" #");
      value = std::string(trim(raw.substr(0, hash)));
    }
    out[std::string(key)] = std::move(value);
  }
  return out;
}

Settings Settings::from(const std::map<std::string, std::string>& dotenv,
                        const std::map<std::string, std::string>& environment) {
  Settings s;
  for (const auto& spec : setting_specs())
    s.set(spec.env, std::string(spec.default_value), Source::fallback);
  for (const auto& [k, v] : dotenv)
    if (find_setting(k)) s.set(k, v, Source::dotenv);
  for (const auto& [k, v] : environment)
    if (find_setting(k)) s.set(k, v, Source::environment);
  return s;
}

Settings Settings::load(const std::string& dotenv_path) {
  std::map<std::string, std::string> dotenv;
  if (std::ifstream in(dotenv_path); in) {
    std::stringstream buf;
    buf << in.rdbuf();
    dotenv = parse_dotenv(buf.str(), dotenv_path);
  }
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view kv(*e);
    const auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string key(kv.substr(0, eq));
    if (find_setting(key)) env[key] = std::string(kv.substr(eq + 1));
  }
  return from(dotenv, env);
}

void Settings::set(std::string_view env, std::string value, Source source) {
  values_[std::string(env)] = {std::move(value), source};
}

const std::string& Settings::get(std::string_view env) const {
  const auto it = values_.find(env);
  return it == values_.end() ? kEmpty : it->second.first;
}

Settings::Source Settings::source(std::string_view env) const {
  const auto it = values_.find(env);
  return it == values_.end() ? Source::fallback : it->second.second;
}

bool Settings::is_set(std::string_view env) const {
  return source(env) != Source::fallback;
}

std::string DatabaseUrl::masked() const {
  std::string out = scheme + "://";
  if (!user.empty() || !password.empty()) {
    out += user;
    if (!password.empty()) out += ":****";
    out += '@';
  }
  out += host;
  if (!port.empty()) out.append(":").append(port);
  if (!database.empty()) out.append("/").append(database);
  if (!query.empty()) out.append("?").append(mask_secrets(query));
  return out;
}

DatabaseUrl parse_database_url(std::string_view text) {
  const auto fail = [&](std::string_view why) {
    return ConfigError(
        fmt::format("DATABASE_URL: {} (got '{}'); expected "
                    "postgresql://user:password@host:port/database",
                    why, mask_secrets(text)));
  };
  DatabaseUrl url;
  url.original = std::string(text);
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) throw fail("not a URI");
  url.scheme = std::string(text.substr(0, sep));
  if (url.scheme != "postgres" && url.scheme != "postgresql") {
    throw fail(fmt::format("unsupported scheme '{}'", url.scheme));
  }
  std::string_view rest = text.substr(sep + 3);
  const auto q = rest.find('?');
  if (q != std::string_view::npos) {
    url.query = std::string(rest.substr(q + 1));
    rest = rest.substr(0, q);
  }
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) url.database = std::string(rest.substr(slash + 1));
  const auto at = authority.rfind('@');
  if (at != std::string_view::npos) {
    const auto userinfo = authority.substr(0, at);
    const auto colon = userinfo.find(':');
    url.user = std::string(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) url.password = std::string(userinfo.substr(colon + 1));
    authority = authority.substr(at + 1);
  }
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) throw fail("unterminated IPv6 host");
    url.host = std::string(authority.substr(0, close + 1));
    authority = authority.substr(close + 1);
    if (!authority.empty()) {
      if (authority.front() != ':') throw fail("junk after IPv6 host");
      url.port = std::string(authority.substr(1));
    }
  } else {
    const auto colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) url.port = std::string(authority.substr(colon + 1));
  }
  if (url.host.empty() && url.query.find("host=") == std::string::npos) throw fail("no host");
  if (url.host.find_first_of(" /@") != std::string::npos) throw fail("malformed host");
  if (!url.port.empty()) {
    int port = 0;
    const auto [ptr, ec] =
        std::from_chars(url.port.data(), url.port.data() + url.port.size(), port);
    if (ec != std::errc() || ptr != url.port.data() + url.port.size() || port < 1 || port > 65535) {
      throw fail(fmt::format("port '{}' is not a number from 1 to 65535", url.port));
    }
  }
  if (url.database.find('/') != std::string::npos) throw fail("malformed database name");
  return url;
}

WorkerConfig WorkerConfig::from_settings(const Settings& s) {
  WorkerConfig c;
  if (const auto& url = s.get("DATABASE_URL"); !url.empty())
    c.database_url = parse_database_url(url);
  c.pgboss_schema = s.get("PGBOSS_SCHEMA");
  if (c.pgboss_schema.empty()) throw ConfigError("PGBOSS_SCHEMA: must not be empty");
  c.supabase_url = s.get("SUPABASE_URL");
  if (!c.supabase_url.empty() && !c.supabase_url.starts_with("http://") &&
      !c.supabase_url.starts_with("https://")) {
    throw ConfigError(
        fmt::format("SUPABASE_URL: expected an http(s):// URL, got '{}'", c.supabase_url));
  }
  c.supabase_anon_key = s.get("SUPABASE_ANON_KEY");
  c.supabase_service_role_key = s.get("SUPABASE_SERVICE_ROLE_KEY");
  c.storage_bucket = s.get("YW_STORAGE_BUCKET");
  c.production = s.get("NODE_ENV") == "production";
  c.concurrency = parse_number<int>(s, "WORKER_CONCURRENCY", 1, 1024);
  for (const auto& item : split_list(s.get("YW_QUEUE_CONCURRENCY"))) {
    const auto eq = item.find('=');
    int n = 0;
    const std::string_view num =
        eq == std::string::npos ? std::string_view{} : std::string_view(item).substr(eq + 1);
    const auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
    if (eq == std::string::npos || !valid_queue_name(item.substr(0, eq)) || num.empty() ||
        ec != std::errc() || ptr != num.data() + num.size() || n < 1 || n > 1024) {
      throw ConfigError(
          fmt::format("YW_QUEUE_CONCURRENCY (--queue-concurrency): expected queue=N pairs (N from "
                      "1 to 1024), got '{}'",
                      item));
    }
    c.queue_concurrency[item.substr(0, eq)] = n;
  }
  for (const auto& item : split_list(s.get("YW_GROUP_CONCURRENCY"))) {
    auto [queue_name, groups] = parse_group_item(item);
    if (!c.group_concurrency.emplace(queue_name, std::move(groups)).second) {
      throw ConfigError(fmt::format(
          "YW_GROUP_CONCURRENCY (--group-concurrency): queue '{}' is given twice", queue_name));
    }
  }
  try {
    c.device = parse_device(s.get("YW_DEVICE"));
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("YW_DEVICE (--device): {}", e.what()));
  }
  c.batch_max = parse_number<int>(s, "YW_BATCH_MAX", 1, 4096);
  c.batch_delay_ms = parse_number<int>(s, "YW_BATCH_DELAY_MS", 0, 60'000);
  c.model = s.get("YW_MODEL");
  c.input_roots = split_list(s.get("YW_INPUT_ROOTS"));
  c.output_uri = s.get("YW_OUTPUT_URI");
  if (!c.output_uri.starts_with("file://") && !c.output_uri.starts_with("supabase://")) {
    throw ConfigError(fmt::format(
        "YW_OUTPUT_URI (--output-uri): expected file://DIR or supabase://bucket/prefix, got '{}'",
        c.output_uri));
  }
  c.shutdown_timeout_s = parse_number<double>(s, "YW_SHUTDOWN_TIMEOUT_S", 0.0, 86'400.0);
  c.db_pool_mode = s.get("YW_DB_POOL_MODE");
  if (c.db_pool_mode != "auto" && c.db_pool_mode != "session" && c.db_pool_mode != "transaction") {
    throw ConfigError(fmt::format(
        "YW_DB_POOL_MODE (--db-pool-mode): expected auto, session or transaction, got '{}'",
        c.db_pool_mode));
  }
  c.metrics_addr = s.get("YW_METRICS_ADDR");
  if (c.metrics_addr == "off") c.metrics_addr.clear();
  if (!c.metrics_addr.empty()) {
    const auto colon = c.metrics_addr.rfind(':');
    int port = -1;
    if (colon != std::string::npos) {
      const std::string_view p = std::string_view(c.metrics_addr).substr(colon + 1);
      const auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
      if (ec != std::errc() || ptr != p.data() + p.size()) port = -1;
    }
    if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535) {
      throw ConfigError(fmt::format(
          "YW_METRICS_ADDR (--metrics-addr): expected host:port or off, got '{}'", c.metrics_addr));
    }
  }
  c.queues = split_list(s.get("YW_QUEUES"));
  for (const auto& q : c.queues) {
    if (!valid_queue_name(q)) {
      throw ConfigError(fmt::format("YW_QUEUES (--queues): '{}' is not a valid queue name", q));
    }
  }
  c.catalogue_schema = s.get("YW_CATALOGUE_SCHEMA");
  if (c.catalogue_schema == "off") c.catalogue_schema.clear();
  const std::string clip = s.get("YW_CATALOGUE_CLIP_INDEX");
  if (clip != "on" && clip != "off") {
    throw ConfigError(fmt::format(
        "YW_CATALOGUE_CLIP_INDEX (--catalogue-clip-index): expected on or off, got '{}'", clip));
  }
  c.catalogue_clip_index = clip == "on";
  c.log_level = s.get("YW_LOG_LEVEL");
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
      c.log_level != "error") {
    throw ConfigError(fmt::format(
        "YW_LOG_LEVEL (--log-level): expected debug, info, warn or error, got '{}'", c.log_level));
  }
  return c;
}

int WorkerConfig::concurrency_for(std::string_view queue) const {
  const auto it = queue_concurrency.find(std::string(queue));
  return it == queue_concurrency.end() ? concurrency : it->second;
}

}  // namespace yw::worker
