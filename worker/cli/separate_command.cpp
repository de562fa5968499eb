// `yesod-worker separate FILE… --out DIR [--model PATH] [--format wav|flac] [--device …]`
// (design.md §4): the separate_stems work on local files, without a database. Stems go to
// DIR/<file stem>/<stem>.<ext>; progress shows on a terminal only.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include <fmt/format.h>

#include "cli/cli.hpp"
#include "yw/common/error.hpp"
#include "yw/kernels/audio_writer.hpp"
#include "yw/models/separator.hpp"

namespace yw::worker::cli {
namespace {

struct SeparateArgs {
  std::vector<std::string> files;
  std::string out;
  std::string format = "flac";
};

int run_separate(const SeparateArgs& args, Context& ctx) {
  const WorkerConfig config = resolve_config(ctx);
  setup_logging(config);
  AudioFileFormat format;
  try {
    format = parse_audio_file_format(args.format, "--format");
  } catch (const InputError& e) {
    throw ConfigError(e.what());
  }
  const Device device = resolve_device(config.device, cuda_inventory());
  models::SeparatorOptions opt;
  opt.model_path = config.model;
  opt.device = device;
  opt.batch_max = config.batch_max;
  opt.batch_delay_ms = 0;  // one song at a time: nothing to wait for
  const auto separator = models::open_separator(opt);
  const bool tty = isatty(STDERR_FILENO) != 0;

  int rc = kExitOk;
  for (size_t i = 0; i < args.files.size(); ++i) {
    const std::filesystem::path file = args.files[i];
    const auto t0 = std::chrono::steady_clock::now();
    std::mutex m;
    auto show = [&](double fraction) {
      if (!tty) return;
      std::lock_guard lock(m);
      std::fprintf(stderr, "\r[%zu/%zu] %s: %3.0f%%", i + 1, args.files.size(),
                   file.filename().c_str(), 100.0 * fraction);
      std::fflush(stderr);
    };
    try {
      const models::Audio mix = models::load_audio(file);
      show(0.0);
      const auto stems = separator->separate(mix, show);
      const auto dir = std::filesystem::path(args.out) / file.stem();
      std::filesystem::create_directories(dir);
      for (const auto& stem : stems) {
        const auto path = dir / fmt::format("{}.{}", stem.name, extension(format));
        write_audio_file(path, format, stem.audio.samples.data(), stem.audio.channels,
                         stem.audio.frames, stem.audio.sample_rate);
      }
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (tty) std::fputs("\r\033[K", stderr);
      std::printf("%s -> %s (%zu stems, %.1f s of audio in %.1f s)\n", file.c_str(), dir.c_str(),
                  stems.size(), mix.duration_seconds(), secs);
      std::fflush(stdout);
    } catch (const ConfigError&) {
      throw;
    } catch (const std::exception& e) {
      if (tty) std::fputs("\r\033[K", stderr);
      std::fprintf(stderr, "yesod-worker separate: %s\n", e.what());
      rc = kExitFailed;
    }
  }
  return rc;
}

}  // namespace

void add_separate_command(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand(
      "separate", "Separate stems of local files into DIR/<file stem>/<stem>.<format>");
  static SeparateArgs args;
  sub->add_option("files", args.files, "audio files")->required();
  sub->add_option("--out", args.out, "output directory")->required();
  sub->add_option("--format", args.format, "stem file format: wav (32-bit float) or flac (24-bit)")
      ->check(CLI::IsMember({"wav", "flac"}))
      ->capture_default_str();
  add_setting_flags(*sub, ctx, {"YW_MODEL", "YW_DEVICE", "YW_BATCH_MAX"});
  sub->callback([&ctx] { ctx.action = [&ctx] { return run_separate(args, ctx); }; });
}

}  // namespace yw::worker::cli
