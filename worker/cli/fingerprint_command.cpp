// `yesod-worker fingerprint FILE... [--length S] [--raw] [--json]`: what fpcalc prints, file by
// file (design.md §4). Text: DURATION=<int>, FINGERPRINT=<...>; --json: one object per line;
// --raw: the items as unsigned decimals. A file that fails is reported on stderr, naming it, and
// the others still run; the exit code is then 1. Files are fingerprinted on --jobs threads
// (each streams its file, so memory stays bounded per thread) and printed in argument order.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cli/cli.hpp"
#include "yw/common/error.hpp"
#include "yw/kernels/fingerprint.hpp"
#include "yw/kernels/fpcalc_resample.hpp"

namespace yw::worker::cli {
namespace {

struct FingerprintOptions {
  std::vector<std::string> files;
  double length = 120.0;
  bool raw = false;
  bool json = false;
  int jobs = 0;  // 0: one per CPU
};

// What one file prints: its stdout block, or its stderr line.
struct FileResult {
  std::string out;
  std::string err;
  bool done = false;
};

std::string join_items(const std::vector<std::uint32_t>& items) {
  std::string out;
  out.reserve(items.size() * 11);
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += fmt::format("{}", items[i]);
  }
  return out;
}

FileResult fingerprint_one(const FingerprintOptions& opt, const std::string& file) {
  FileResult r;
  try {
    const FileFingerprint fp = fingerprint_file(file, opt.length);
    if (fp.items.empty())
      YW_THROW_INPUT("{}: empty fingerprint (less than {:.2f} s of audio to fingerprint)", file,
                     static_cast<double>(kChromaprintMinSamples) / kFpcalcSampleRate);
    if (opt.json) {
      const std::string value =
          opt.raw ? "[" + join_items(fp.items) + "]" : "\"" + fp.fingerprint + "\"";
      r.out = fmt::format("{{\"duration\": {:.2f}, \"fingerprint\": {}}}\n", fp.duration_seconds,
                          value);
    } else {
      r.out =
          fmt::format("DURATION={}\nFINGERPRINT={}\n", static_cast<long long>(fp.duration_seconds),
                      opt.raw ? join_items(fp.items) : fp.fingerprint);
    }
  } catch (const std::exception& e) {
    const std::string what = e.what();
    // Decoder errors already start with the path; others get it added.
    r.err = what.rfind(file, 0) == 0 ? what : fmt::format("{}: {}", file, what);
  }
  return r;
}

int run_fingerprint(const FingerprintOptions& opt) {
  const std::size_t n = opt.files.size();
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t threads =
      std::min<std::size_t>(n, opt.jobs > 0 ? static_cast<std::size_t>(opt.jobs) : cpus);
  std::vector<FileResult> results(n);
  std::mutex mutex;
  std::condition_variable ready;
  std::size_t next = 0;
  const auto work = [&] {
    while (true) {
      std::size_t i;
      {
        std::lock_guard lock(mutex);
        if (next >= n) return;
        i = next++;
      }
      FileResult r = fingerprint_one(opt, opt.files[i]);
      r.done = true;
      {
        std::lock_guard lock(mutex);
        results[i] = std::move(r);
      }
      ready.notify_all();
    }
  };
  std::vector<std::jthread> pool;
  for (std::size_t t = 0; t < threads; ++t)
    pool.emplace_back(work);
  int rc = kExitOk;
  // Results are printed in argument order, each as soon as all before it are out.
  for (std::size_t printed = 0; printed < n; ++printed) {
    {
      std::unique_lock lock(mutex);
      ready.wait(lock, [&] { return results[printed].done; });
    }
    FileResult& r = results[printed];
    if (r.err.empty()) {
      std::fwrite(r.out.data(), 1, r.out.size(), stdout);
    } else {
      std::fflush(stdout);
      std::fprintf(stderr, "ERROR: %s\n", r.err.c_str());
      rc = kExitFailed;
    }
    r = FileResult{{}, {}, true};  // frees the text early
  }
  std::fflush(stdout);
  return rc;
}

}  // namespace

void add_fingerprint_command(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand(
      "fingerprint",
      "Chromaprint fingerprints, printed as fpcalc prints them (one block per file)");
  static FingerprintOptions opt;
  sub->add_option("files", opt.files, "audio files")->required();
  sub->add_option("--length", opt.length, "seconds of audio to use (fpcalc -length); 0 = all")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--raw", opt.raw, "print the raw items as unsigned decimals")
      ->capture_default_str();
  sub->add_flag("--json", opt.json, "print one JSON object per file")->capture_default_str();
  sub->add_option("--jobs", opt.jobs, "files fingerprinted at once; 0 = one per CPU")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->callback([&ctx] { ctx.action = [] { return run_fingerprint(opt); }; });
}

}  // namespace yw::worker::cli
