// `yesod-worker metadata`: parses its documented flags; says plainly that it cannot run yet.
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

void add_metadata_command(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("metadata", "Format, tags, loudness and waveform, as JSON");
  static std::vector<std::string> files;
  static std::string waveform;
  sub->add_option("files", files, "audio files")->required();
  sub->add_option("--waveform", waveform, "write the waveform peaks JSON here");
  sub->callback([&ctx] { ctx.action = [] { return not_available("metadata", "metadata"); }; });
}

}  // namespace yw::worker::cli
