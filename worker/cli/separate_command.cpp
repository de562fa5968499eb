// `yesod-worker separate FILE… --out DIR [--model PATH] [--format wav|flac] [--device …]`
// (design.md §4): the separate_stems work on local files, without a database, with the job's
// Demucs options (--shifts, --seed, --overlap, --segment, --clip-mode, --bit-depth, --float32,
// --output-rate). Stems go to DIR/<file stem>/<stem>.<ext>; progress shows on a terminal only.
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
  models::SeparateOptions options;
  std::string clip_mode = "rescale";
  int bit_depth = 0;
  bool float32 = false;
  std::string output_rate = "input";
  int threads = 0;
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
  if (args.float32 && args.bit_depth != 0)
    throw ConfigError("--float32 cannot be combined with --bit-depth");
  if (args.float32 && format != AudioFileFormat::wav)
    throw ConfigError("--float32: FLAC stores integer samples only; use --format wav");
  const int bits = args.float32 ? 32 : args.bit_depth;
  const models::ClipMode clip = models::parse_clip_mode(args.clip_mode, "--clip-mode");
  models::SeparateOptions options = args.options;
  options.model_rate = args.output_rate == "model";
  const Device device = resolve_device(config.device, cuda_inventory());
  models::SeparatorOptions opt;
  opt.model_path = config.model;
  opt.device = device;
  opt.threads = args.threads;
  // On a CPU, one window per forward unless --batch-max says otherwise: Demucs runs one chunk at
  // a time there too, batching buys no speed on a CPU (README, pipeline bench: 0.95x) and a
  // batch of htdemucs windows costs its activations and buffers many times over.
  opt.batch_max = device.is_cuda() || ctx.settings.is_set("YW_BATCH_MAX") ? config.batch_max : 1;
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
      models::Audio mix = models::load_audio(file);
      show(0.0);
      auto stems = separator->separate(mix, options, show);
      const double duration = mix.duration_seconds();
      mix = {};
      const auto dir = std::filesystem::path(args.out) / file.stem();
      std::filesystem::create_directories(dir);
      for (auto& stem : stems) {
        const auto path = dir / fmt::format("{}.{}", stem.name, extension(format));
        models::prevent_clip(stem.audio, clip);
        write_audio_file(path, format, stem.audio.samples.data(), stem.audio.channels,
                         stem.audio.frames, stem.audio.sample_rate, bits);
      }
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (tty) std::fputs("\r\033[K", stderr);
      std::printf("%s -> %s (%zu stems, %.1f s of audio in %.1f s)\n", file.c_str(), dir.c_str(),
                  stems.size(), duration, secs);
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
  // Demucs' options and output conventions, with its meanings (Demucs' CLI defaults differ:
  // --shifts 1 and 16-bit WAV).
  sub->add_option("--shifts", args.options.shifts,
                  "random time shifts averaged (Demucs' shift trick); 0 = deterministic")
      ->check(CLI::Range(0, 20))
      ->capture_default_str();
  sub->add_option("--seed", args.options.seed, "seed of the shifts' offsets")
      ->capture_default_str();
  sub->add_option("--overlap", args.options.overlap, "overlap between chunks")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
  sub->add_option("--segment", args.options.segment_seconds,
                  "chunk length in seconds, at most the model's window; 0 = the window")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  sub->add_option("--clip-mode", args.clip_mode,
                  "per stem: rescale (divide by max(1.01 * peak, 1)), clamp (+-0.99) or none")
      ->check(CLI::IsMember({"rescale", "clamp", "none"}))
      ->capture_default_str();
  sub->add_option("--bit-depth", args.bit_depth,
                  "integer samples: 16 or 24 (default: wav float, flac 24)")
      ->check(CLI::IsMember({16, 24}));
  sub->add_flag("--float32", args.float32, "32-bit float samples (wav only)");
  sub->add_option("--output-rate", args.output_rate,
                  "stems at the input's sample rate or the model's")
      ->check(CLI::IsMember({"input", "model"}))
      ->capture_default_str();
  sub->add_option("--threads", args.threads,
                  "CPU threads for the model (libtorch); 0 = one per core")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  add_setting_flags(*sub, ctx, {"YW_MODEL", "YW_DEVICE", "YW_BATCH_MAX"});
  sub->callback([&ctx] { ctx.action = [&ctx] { return run_separate(args, ctx); }; });
}

}  // namespace yw::worker::cli
