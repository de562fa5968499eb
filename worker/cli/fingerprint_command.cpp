// `yesod-worker fingerprint`: parses its documented flags; says plainly that it cannot run yet.
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

}  // namespace yw::worker::cli
