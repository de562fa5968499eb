// `yesod-worker metadata FILE… [--waveform OUT.json]`: the extract_metadata analysis of local
// files, one JSON object per line on stdout (design.md §4). Runs without a database.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>

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
  int jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
};

// One file's result: a JSON line, or the error to print.
struct FileResult {
  bool done = false;
  bool ok = false;
  std::string text;
};

FileResult analyze_one(const std::string& file, const MetadataArgs& args,
                       const MetadataOptions& options) {
  FileResult out;
  try {
    const MetadataResult r = analyze_audio_file(file, options);
    std::optional<std::string> waveform;
    if (!args.waveform.empty()) {
      std::ofstream wf(args.waveform, std::ios::binary | std::ios::trunc);
      wf << to_json(r.waveform).dump() << '\n';
      wf.close();
      if (!wf) YW_THROW("cannot write '{}'", args.waveform);
      waveform = args.waveform;
    }
    nlohmann::json j = to_json(r, waveform);
    j["file"] = file;
    out.text = j.dump() + "\n";
    out.ok = true;
  } catch (const std::exception& e) {
    out.text = fmt::format("yesod-worker metadata: {}\n", e.what());
  }
  out.done = true;
  return out;
}

// Files are analysed on `jobs` threads and printed in the order given, each as soon as it and
// every file before it are done.
int run_metadata(const MetadataArgs& args) {
  if (!args.waveform.empty() && args.files.size() != 1) {
    std::fprintf(stderr, "yesod-worker metadata: --waveform takes exactly one FILE\n");
    return kExitUsage;
  }
  MetadataOptions options;
  options.waveform.samples_per_pixel = args.samples_per_pixel;
  options.waveform.bits = args.bits;
  std::vector<FileResult> results(args.files.size());
  std::mutex m;
  std::condition_variable cv;
  std::atomic<std::size_t> next{0};
  const auto worker = [&] {
    for (std::size_t i = next++; i < args.files.size(); i = next++) {
      FileResult r = analyze_one(args.files[i], args, options);
      std::lock_guard lock(m);
      results[i] = std::move(r);
      cv.notify_all();
    }
  };
  const std::size_t n_threads =
      std::min<std::size_t>(static_cast<std::size_t>(std::max(args.jobs, 1)), args.files.size());
  std::vector<std::jthread> threads;
  for (std::size_t t = 1; t < n_threads; ++t)
    threads.emplace_back(worker);
  if (n_threads <= 1) worker();

  int rc = kExitOk;
  for (std::size_t i = 0; i < results.size(); ++i) {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return results[i].done; });
    const FileResult r = std::move(results[i]);
    lock.unlock();
    std::fputs(r.text.c_str(), r.ok ? stdout : stderr);
    std::fflush(r.ok ? stdout : stderr);
    if (!r.ok) rc = kExitFailed;
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
  sub->add_option("--jobs,-j", args.jobs, "files analysed at once (default: CPU threads)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  sub->callback([&ctx] { ctx.action = [] { return run_metadata(args); }; });
}

}  // namespace yw::worker::cli
