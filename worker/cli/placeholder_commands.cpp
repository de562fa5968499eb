// Subcommands whose handlers have not landed yet: they parse their documented flags (so --help
// is already right) and say plainly that they cannot run, with exit code 2.
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

void add_fingerprint_command(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("fingerprint", "Chromaprint fingerprints, as fpcalc prints them");
  static std::vector<std::string> files;
  static int length = 120;
  static bool raw = false, json = false;
  sub->add_option("files", files, "audio files")->required();
  sub->add_option("--length", length, "seconds of audio to use; 0 = all")->capture_default_str();
  sub->add_flag("--raw", raw, "print the raw fingerprint items")->capture_default_str();
  sub->add_flag("--json", json, "print JSON")->capture_default_str();
  sub->callback(
      [&ctx] { ctx.action = [] { return not_available("fingerprint", "fingerprints"); }; });
}

void add_metadata_command(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("metadata", "Format, tags, loudness and waveform, as JSON");
  static std::vector<std::string> files;
  static std::string waveform;
  sub->add_option("files", files, "audio files")->required();
  sub->add_option("--waveform", waveform, "write the waveform peaks JSON here");
  sub->callback([&ctx] { ctx.action = [] { return not_available("metadata", "metadata"); }; });
}

void add_separate_command(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("separate", "Separate stems into a directory");
  static std::vector<std::string> files;
  static std::string out, format = "flac";
  sub->add_option("files", files, "audio files")->required();
  sub->add_option("--out", out, "output directory")->required();
  sub->add_option("--format", format, "wav or flac")->capture_default_str();
  add_setting_flags(*sub, ctx, {"YW_MODEL", "YW_DEVICE"});
  sub->callback(
      [&ctx] { ctx.action = [] { return not_available("separate", "stem separation"); }; });
}

}  // namespace yw::worker::cli
