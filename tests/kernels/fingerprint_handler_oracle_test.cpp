// The `fingerprint_audio` job against fpcalc (label `oracle`, issue 12): the job's output holds
// the string (and, with raw, the items) fpcalc prints for the same file, for the uploads that
// used to differ: float masters above full scale, 5.1 with its LFE channel, Opus.
#include <gtest/gtest.h>

#include <filesystem>

#include "kernels/audio_fixtures.hpp"
#include "support/process.hpp"
#include "yw/worker/handler.hpp"

namespace yw::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

TEST(FingerprintJobVsFpcalc, OutputHoldsFpcalcsFingerprint) {
  const ScratchDir scratch("yw-fp-job");
  const fs::path& dir = scratch.path();
  worker::WorkerConfig config;
  config.input_roots = {dir.string()};
  config.output_uri = "file://" + (dir / "out").string();
  worker::HandlerRegistry registry;
  worker::register_fingerprint_handlers(registry);
  worker::JobContext ctx;
  ctx.queue = "fingerprint_audio";
  ctx.id = "job-1";
  ctx.config = &config;

  make_audio(dir / "src.wav", Content::chords, 48000, 2, 30.0);
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"loud.wav", {"-af", "volume=12dB", "-c:a", "pcm_f32le"}},
      {"surround.flac",
       {"-af", "pan=5.1|FL=c0|FR=c1|FC=0.5*c0+0.5*c1|LFE=c0|BL=c0|BR=c1", "-c:a", "flac"}},
      {"a.opus", {"-c:a", "libopus"}}};
  for (const auto& [name, args] : cases) {
    SCOPED_TRACE(name);
    const fs::path f = dir / name;
    ffmpeg_convert(dir / "src.wav", f, args);
    const json out = (*registry.find("fingerprint_audio"))(
        {{"audio", "file://" + f.string()}, {"raw", true}}, ctx);
    const FpcalcResult text = run_fpcalc(f, {});
    const FpcalcResult raw = run_fpcalc(f, {"-raw"});
    ASSERT_TRUE(text.ok && raw.ok) << text.err << raw.err;
    EXPECT_EQ(out.at("fingerprint"), text.fingerprint);
    EXPECT_EQ(out.at("items").get<std::vector<std::uint32_t>>(), parse_items(raw.fingerprint));
  }
}

}  // namespace
}  // namespace yw::test
