// `yesod-worker match FILE... [--against DATABASE_URL] [--mode full|clip|both] [--length S]
//  [--min-score X] [--json]`: the matches of local files. With --against, each file is matched
// against that database's catalogue (YW_CATALOGUE_SCHEMA; read-only: nothing is added); without
// it, the files are matched against each other. Text: one block per file, `FILE` then one
// `  score verdict offset record` line per match; --json: one object per file per line. A file
// that fails is reported on stderr, naming it, and the others still run (exit code 1).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/cli.hpp"
#include "yw/common/error.hpp"
#include "yw/kernels/fingerprint.hpp"
#include "yw/worker/catalogue.hpp"

namespace yw::worker::cli {
namespace {

struct MatchCliOptions {
  std::vector<std::string> files;
  std::string against;
  std::string mode = "both";
  double length = 120.0;
  double min_score = kSimilarThreshold;
  int limit = 10;
  bool json = false;
};

int run_match(const MatchCliOptions& opt, const WorkerConfig& config) {
  MatchOptions o = match_options_from_json(
      {{"mode", opt.mode}, {"min_score", opt.min_score}, {"limit", opt.limit}}, "--");
  std::unique_ptr<Catalogue> catalogue;
  FingerprintIndex local(true);
  if (!opt.against.empty()) {
    const auto url = parse_database_url(opt.against);
    if (config.catalogue_schema.empty())
      throw ConfigError("--against: YW_CATALOGUE_SCHEMA is off; name the catalogue's schema");
    catalogue = std::make_unique<Catalogue>(url.original, config.catalogue_schema,
                                            config.pgboss_schema, true);
  }
  int rc = kExitOk;
  std::vector<FileFingerprint> fps(opt.files.size());
  std::vector<bool> ok(opt.files.size(), false);
  for (std::size_t i = 0; i < opt.files.size(); ++i) {
    try {
      fps[i] = fingerprint_file(opt.files[i], opt.length);
      YW_CHECK_INPUT(!fps[i].items.empty(), "{}: empty fingerprint (too short)", opt.files[i]);
      ok[i] = true;
      if (!catalogue) local.upsert(opt.files[i], fps[i].items, fps[i].duration_seconds);
    } catch (const std::exception& e) {
      const std::string what = e.what();
      std::fprintf(stderr, "ERROR: %s\n",
                   (what.rfind(opt.files[i], 0) == 0 ? what : opt.files[i] + ": " + what).c_str());
      rc = kExitFailed;
    }
  }
  for (std::size_t i = 0; i < opt.files.size(); ++i) {
    if (!ok[i]) continue;
    MatchOptions fo = o;
    if (!catalogue) fo.exclude = opt.files[i];
    const auto matches =
        catalogue
            ? catalogue->match(fps[i].items, fps[i].duration_seconds, fo, &bit_errors_batch_cpu)
            : local.match(fps[i].items, fps[i].duration_seconds, fo, &bit_errors_batch_cpu);
    if (opt.json) {
      const nlohmann::json line = {{"file", opt.files[i]},
                                   {"duration_seconds", fps[i].duration_seconds},
                                   {"matches", matches_json(matches)}};
      std::printf("%s\n", line.dump().c_str());
    } else {
      std::printf("%s\n", opt.files[i].c_str());
      if (matches.empty()) std::printf("  no match\n");
      for (const auto& m : matches) {
        std::printf("  %.3f %-14s offset %+.2f s  matched %.1f s  BER %.3f  %s  %s\n",
                    static_cast<double>(m.score), m.verdict.c_str(), m.offset_seconds,
                    m.matched_seconds, m.bit_error_rate, m.mode.c_str(), m.record_id.c_str());
      }
    }
  }
  std::fflush(stdout);
  return rc;
}

}  // namespace

void add_match_command(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand(
      "match", "Matches of local audio files: against a catalogue (--against) or each other");
  static MatchCliOptions opt;
  sub->add_option("files", opt.files, "audio files")->required();
  sub->add_option("--against", opt.against,
                  "PostgreSQL URI whose catalogue (YW_CATALOGUE_SCHEMA) to match against; "
                  "without it the files are matched against each other")
      ->capture_default_str();
  sub->add_option("--mode", opt.mode,
                  "full (AcoustID's window, ±9.9 s), clip (excerpts "
                  "anywhere) or both")
      ->capture_default_str()
      ->check(CLI::IsMember({"full", "clip", "both"}));
  sub->add_option("--length", opt.length, "seconds of audio to fingerprint; 0 = all")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--min-score", opt.min_score, "lowest score reported (0.4: similar)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--limit", opt.limit, "most matches per file")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  sub->add_flag("--json", opt.json, "print one JSON object per file")->capture_default_str();
  add_setting_flags(*sub, ctx, {"YW_CATALOGUE_SCHEMA", "PGBOSS_SCHEMA"});
  sub->callback([&ctx] { ctx.action = [&ctx] { return run_match(opt, resolve_config(ctx)); }; });
}

}  // namespace yw::worker::cli
