// `yesod-worker fingerprint FILE... [--length S] [--raw] [--json]`: what fpcalc prints, file by
// file (design.md §4). Text: DURATION=<int>, FINGERPRINT=<...>; --json: one object per line;
// --raw: the items as unsigned decimals. A file that fails is reported on stderr, naming it, and
// the others still run; the exit code is then 1.
#include <cstdio>
#include <string>
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

int run_fingerprint(const FingerprintOptions& opt) {
  int rc = kExitOk;
  for (const auto& file : opt.files) {
    try {
      const FileFingerprint fp = fingerprint_file(file, opt.length);
      if (fp.items.empty())
        YW_THROW_INPUT("{}: empty fingerprint (less than {:.2f} s of audio to fingerprint)", file,
                       static_cast<double>(kChromaprintMinSamples) / kFpcalcSampleRate);
      std::string text;
      if (opt.json) {
        const std::string value =
            opt.raw ? "[" + join_items(fp.items) + "]" : "\"" + fp.fingerprint + "\"";
        text = fmt::format("{{\"duration\": {:.2f}, \"fingerprint\": {}}}\n", fp.duration_seconds,
                           value);
      } else {
        text = fmt::format("DURATION={}\nFINGERPRINT={}\n",
                           static_cast<long long>(fp.duration_seconds),
                           opt.raw ? join_items(fp.items) : fp.fingerprint);
      }
      std::fwrite(text.data(), 1, text.size(), stdout);
    } catch (const std::exception& e) {
      std::fflush(stdout);
      const std::string what = e.what();
      // Decoder errors already start with the path; others get it added.
      const std::string msg = what.rfind(file, 0) == 0 ? what : fmt::format("{}: {}", file, what);
      std::fprintf(stderr, "ERROR: %s\n", msg.c_str());
      rc = kExitFailed;
    }
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
  sub->callback([&ctx] { ctx.action = [] { return run_fingerprint(opt); }; });
}

}  // namespace yw::worker::cli
