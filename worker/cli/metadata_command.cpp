// `yesod-worker metadata FILE… [--waveform OUT.json]`: the extract_metadata analysis of local
// files, one JSON object per line on stdout (design.md §4). Runs without a database.
#include <cstdio>
#include <fstream>

#include "cli/cli.hpp"
#include "yw/common/error.hpp"
#include "yw/worker/metadata.hpp"

namespace yw::worker::cli {
namespace {

struct MetadataArgs {
  std::vector<std::string> files;
  std::string waveform;
  int samples_per_pixel = WaveformConfig{}.samples_per_pixel;
  int bits = WaveformConfig{}.bits;
};

int run_metadata(const MetadataArgs& args) {
  if (!args.waveform.empty() && args.files.size() != 1) {
    std::fprintf(stderr, "yesod-worker metadata: --waveform takes exactly one FILE\n");
    return kExitUsage;
  }
  MetadataOptions options;
  options.waveform.samples_per_pixel = args.samples_per_pixel;
  options.waveform.bits = args.bits;
  int rc = kExitOk;
  for (const auto& file : args.files) {
    try {
      const MetadataResult r = analyze_audio_file(file, options);
      std::optional<std::string> waveform;
      if (!args.waveform.empty()) {
        std::ofstream out(args.waveform, std::ios::binary | std::ios::trunc);
        out << to_json(r.waveform).dump() << '\n';
        out.close();
        if (!out) YW_THROW("cannot write '{}'", args.waveform);
        waveform = args.waveform;
      }
      nlohmann::json j = to_json(r, waveform);
      j["file"] = file;
      std::fputs((j.dump() + "\n").c_str(), stdout);
      std::fflush(stdout);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "yesod-worker metadata: %s\n", e.what());
      rc = kExitFailed;
    }
  }
  return rc;
}

}  // namespace

void add_metadata_command(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand(
      "metadata",
      "Format, tags, loudness, ReplayGain, SHA-256 and waveform: one JSON line per file");
  static MetadataArgs args;
  sub->add_option("files", args.files, "audio files")->required();
  sub->add_option("--waveform", args.waveform,
                  "write the waveform peaks (audiowaveform JSON v2) here; one FILE only")
      ->capture_default_str();
  sub->add_option("--samples-per-pixel", args.samples_per_pixel, "waveform resolution")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  sub->add_option("--bits", args.bits, "waveform value size: 8 or 16")
      ->check(CLI::IsMember({8, 16}))
      ->capture_default_str();
  sub->callback([&ctx] { ctx.action = [] { return run_metadata(args); }; });
}

}  // namespace yw::worker::cli
