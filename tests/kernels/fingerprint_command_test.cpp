// The worker's `fingerprint` command against the real fpcalc (label `oracle`): its output, and
// that it streams. Apart from fingerprint_oracle_test.cpp because these run the yesod-worker
// binary, which the core identity tests must not wait for (scripts/test.sh builds those alone at
// -march=x86-64-v3).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kernels/audio_fixtures.hpp"
#include "support/process.hpp"

namespace yw::test {
namespace {

namespace fs = std::filesystem;

// The CLI prints what fpcalc prints, block for block, for several files at once.
TEST(FingerprintCommand, PrintsWhatFpcalcPrints) {
  ScratchDir dir("yw-fp-command");
  const fs::path a = dir / "a.wav";
  const fs::path b = dir / "b.flac";
  make_audio(a, Content::chords, 44100, 2, 14.6);
  make_audio(b, Content::speech, 16000, 1, 33.3);
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{}, {"-raw"}, {"-json"}, {"-json", "-raw"}, {"-length", "0"}}) {
    std::vector<std::string> fp = {"fpcalc", "-ignore-errors"};
    std::vector<std::string> yw = {worker_binary(), "fingerprint"};
    for (const auto& f : flags) {
      fp.push_back(f);
      yw.push_back(f == "-length" ? "--length" : (f == "0" ? f : "-" + f));
    }
    for (const auto& f : {a, b}) {
      fp.push_back(f.string());
      yw.push_back(f.string());
    }
    const auto expected = run_process(fp);
    const auto got = run_process(yw);
    EXPECT_EQ(got.exit_code, 0) << got.err;
    EXPECT_EQ(got.out, expected.out) << fmt::format("flags: {}", fmt::join(flags, " "));
  }
}

// Streaming: a 10-minute 44.1 kHz stereo WAV (106 MB of samples) fingerprinted whole must not
// be held in memory. The CLI's peak resident size stays far below the decoded size (the issue's
// bound is 100 MB for one hour).
TEST(FingerprintMemory, TenMinuteWavIsStreamed) {
  ScratchDir dir("yw-fp-command");
  const auto peak_kb = [&](const fs::path& file) {
    const auto r = run_process({"/usr/bin/time", "-f", "peak_kb=%M", worker_binary(), "fingerprint",
                                "--length", "0", file.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const auto at = r.err.rfind("peak_kb=");
    return at == std::string::npos ? -1L : std::stol(r.err.substr(at + 8));
  };
  const fs::path shorter = dir / "short.wav";
  const fs::path longer = dir / "long.wav";
  make_audio(shorter, Content::noise, 44100, 2, 10.0);
  make_audio(longer, Content::noise, 44100, 2, 600.0);
  const long base = peak_kb(shorter);
  const long peak = peak_kb(longer);
  ASSERT_GT(base, 0);
  ASSERT_GT(peak, 0);
  std::printf("[ MEMORY   ] peak RSS %.1f MB for 600 s, %.1f MB for 10 s (44.1 kHz stereo)\n",
              peak / 1024.0, base / 1024.0);
  EXPECT_LT(peak, 100 * 1024);
  // Holding the decoded file would add 106 MB; streaming adds next to nothing.
  EXPECT_LT(peak - base, 16 * 1024);
}

}  // namespace
}  // namespace yw::test
