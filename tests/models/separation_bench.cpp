// Separation throughput (scripts/bench/separation.sh): a convolutional encoder/decoder of about
// 11 M parameters built here, N songs, in one run:
//   unbatched   one segment per forward call, one song after another (Demucs' apply_model)
//   per-song    up to --batch segments per call, but only from one song at a time
//   cross-song  all songs submitted at once; each call takes up to --batch segments from all
// and the built-in HPSS separator on the same songs. Prints seconds of audio per second and the
// ratios. No assertions: figures only.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#ifdef YW_BENCH_BUILDS_MODELS
#include "torch_models.hpp"
#endif
#include "yw/kernels/device.hpp"
#include "yw/models/separator.hpp"

namespace {

using yw::models::Audio;

Audio make_song(int seconds, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.05f);
  Audio a = Audio::zeros(44100, 2, static_cast<int64_t>(seconds) * 44100);
  for (int c = 0; c < 2; ++c)
    for (int64_t i = 0; i < a.frames; ++i)
      a.channel(c)[i] = d(rng) + 0.2f * std::sin(0.0627f * static_cast<float>(i) * (1 + c));
  return a;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

}  // namespace

int main(int argc, char** argv) {
  int songs = 8, seconds = 180, batch = 8, threads = 0;
  std::string device_text = "cpu";
  bool skip_unbatched = false;
  int memory_song = 0;
  std::string model_file;  // a TorchScript file made elsewhere instead of the built-in model
  bool startup = false, old_probe = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--songs")
      songs = std::stoi(next());
    else if (a == "--seconds")
      seconds = std::stoi(next());
    else if (a == "--batch")
      batch = std::stoi(next());
    else if (a == "--threads")
      threads = std::stoi(next());
    else if (a == "--device")
      device_text = next();
    else if (a == "--skip-unbatched")
      skip_unbatched = true;
    else if (a == "--memory-song")
      memory_song = std::stoi(next());
    else if (a == "--model")
      model_file = next();
    else if (a == "--startup")
      startup = true;
    else if (a == "--startup-old-probe")
      startup = old_probe = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--songs 8] [--seconds 180] [--batch 8] [--threads N] "
                   "[--device cpu|cuda:N] [--skip-unbatched] [--memory-song SECONDS] "
                   "[--model FILE] [--startup] [--startup-old-probe]\n",
                   argv[0]);
      return 2;
    }
  }
  const yw::Device device = yw::resolve_device(yw::parse_device(device_text), yw::cuda_inventory());
  const auto dir = std::filesystem::temp_directory_path() / "yw_separation_bench";
  std::filesystem::create_directories(dir);
#ifndef YW_BENCH_BUILDS_MODELS
  // The device bundle's build (scripts/gpu-check.sh) has no libtorch TU: the model comes from
  // scripts/gpu-check/demucs_like.py, and the runner from the device's own torch.
  if (model_file.empty()) {
    std::fprintf(stderr, "%s: this build needs --model FILE\n", argv[0]);
    return 2;
  }
#endif
  if (memory_song > 0) {
    // Peak memory for one song: separation.sh --memory compares a 3-minute and a 20-minute song
    // with a small model built here; gpu-check.sh does the same on the device with --model (the
    // device's memory is sampled outside, by nvidia-smi).
    std::string path = model_file;
#ifdef YW_BENCH_BUILDS_MODELS
    if (path.empty()) {
      path = (dir / "conv_small.pt").string();
      yw::test::save_conv_model(path, {}, {8, 16}, 1);
    }
#endif
    yw::models::SeparatorOptions opt;
    opt.model_path = path;
    opt.device = device;
    opt.threads = threads;
    opt.batch_max = batch;
    auto sep = yw::models::open_separator(opt);
    const double before = peak_rss_mb();
    {
      const Audio song = make_song(memory_song, 1);
      const double t0 = now();
      const auto stems = sep->separate(song);
      const double own =
          static_cast<double>(song.samples.size() * (1 + stems.size()) * sizeof(float)) /
          (1024.0 * 1024.0);
      std::printf(
          "memory: song %d s, batch %d, device %s, peak RSS %.0f MB (%.0f MB before the song), "
          "song audio + stems %.0f MB, %.1f s\n",
          memory_song, batch, device.to_string().c_str(), peak_rss_mb(), before, own, now() - t0);
    }
    std::filesystem::remove_all(dir);
    return 0;
  }
  std::string model = model_file;
  int64_t params = 0;
#ifdef YW_BENCH_BUILDS_MODELS
  if (model.empty()) {
    model = (dir / "conv11m.pt").string();
    yw::test::TorchModelSpec spec;
    spec.segment_samples = 343980;  // htdemucs' 7.8 s at 44.1 kHz
    params = yw::test::save_conv_model(model, spec, {64, 128, 256, 512, 1024}, 1);
    std::printf("model: conv encoder/decoder, %.1f M parameters, segment 7.8 s, device %s\n",
                static_cast<double>(params) / 1e6, device.to_string().c_str());
  }
#endif
  if (!model_file.empty())
    std::printf("model: %s, device %s\n", model_file.c_str(), device.to_string().c_str());
  if (startup) {
    // What one `separate` process pays before and for its first song: loading the runner and
    // the model (the contract check; no forward for a model that declares its length), then a
    // 20 s song (3 windows). One window's forward is what the old load-time probe cost.
    yw::models::SeparatorOptions opt;
    opt.model_path = model;
    opt.device = device;
    opt.threads = threads;
    opt.batch_max = 1;
    opt.batch_delay_ms = 0;
    const double t0 = now();
    auto sep = yw::models::open_separator(opt);
#ifdef YW_BENCH_BUILDS_MODELS
    if (old_probe) {
      // What loading did before: one forward of the whole window on the loading thread (its
      // activations then sit in that thread's malloc arena while the runner thread allocates
      // its own).
      std::vector<float> probe(2 * 343980, 0.01f);
      yw::test::torch_forward_once(model, probe, 2, 343980);
    }
#endif
    const double t1 = now();
    const Audio song = make_song(20, 1);
    sep->separate(song);
    const double t2 = now();
    const Audio window = make_song(7, 2);  // 7 s: one 7.8 s window
    sep->separate(window);
    const double t3 = now();
    std::printf(
        "startup%s: model %.1f M parameters, load %.2f s, 20 s song %.2f s, total %.2f s, peak "
        "RSS %.0f MB; one window forward %.2f s (the probe loading used to run)\n",
        old_probe ? " (old load-time probe emulated)" : "", static_cast<double>(params) / 1e6,
        t1 - t0, t2 - t1, t2 - t0, peak_rss_mb(), t3 - t2);
    std::filesystem::remove_all(dir);
    return 0;
  }
  std::vector<Audio> mix;
  for (int s = 0; s < songs; ++s)
    mix.push_back(make_song(seconds, static_cast<unsigned>(s)));
  const double audio_s = static_cast<double>(songs) * seconds;
  std::printf("songs: %d x %d s stereo 44.1 kHz (%.0f s of audio), batch %d, threads %d\n", songs,
              seconds, audio_s, batch, threads);

  yw::models::SeparatorOptions opt;
  opt.model_path = model;
  opt.device = device;
  opt.threads = threads;
  auto run_serial = [&](int b) {
    opt.batch_max = b;
    opt.batch_delay_ms = 0;
    auto sep = yw::models::open_separator(opt);
    const double t0 = now();
    for (const auto& m : mix)
      sep->separate(m);
    return audio_s / (now() - t0);
  };
  double unbatched = 0.0;
  if (!skip_unbatched) {
    unbatched = run_serial(1);
    std::printf("unbatched  (1 segment per call, song by song):      %8.2f s audio / s\n",
                unbatched);
  }
  const double per_song = run_serial(batch);
  std::printf("per-song   (%d segments per call, one song at a time): %8.2f s audio / s\n", batch,
              per_song);
  double cross = 0.0;
  {
    opt.batch_max = batch;
    opt.batch_delay_ms = 50;
    auto sep = yw::models::open_separator(opt);
    const double t0 = now();
    std::vector<std::thread> workers;
    for (const auto& m : mix)
      workers.emplace_back([&sep, &m] { sep->separate(m); });
    for (auto& w : workers)
      w.join();
    cross = audio_s / (now() - t0);
  }
  std::printf("cross-song (%d segments per call from all songs):   %8.2f s audio / s\n", batch,
              cross);
  if (unbatched > 0)
    std::printf("ratio cross-song / unbatched: %.2fx   cross-song / per-song: %.2fx\n",
                cross / unbatched, cross / per_song);
  else
    std::printf("ratio cross-song / per-song: %.2fx\n", cross / per_song);

  yw::models::SeparatorOptions hopt;
  hopt.device = device;
  auto hpss = yw::models::open_separator(hopt);
  const double t0 = now();
  for (const auto& m : mix)
    hpss->separate(m);
  std::printf("built-in hpss (%s): %8.2f s audio / s\n", device.to_string().c_str(),
              audio_s / (now() - t0));
  std::printf("peak RSS: %.0f MB\n", peak_rss_mb());
  std::filesystem::remove_all(dir);
  return 0;
}
