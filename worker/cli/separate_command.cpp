// `yesod-worker separate`: parses its documented flags; says plainly that it cannot run yet.
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
