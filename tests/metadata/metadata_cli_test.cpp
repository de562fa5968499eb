// `yesod-worker metadata` (label unit): one JSON line per file in the order given, exit codes
// 0 / 1 (a file failed, the others still printed) / 2 (usage), --help with defaults, --waveform.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "metadata/metadata_test_util.hpp"

namespace yw::test {
namespace {

using nlohmann::json;

TEST(MetadataCli, HelpListsEveryFlagWithItsDefault) {
  const auto r = run_process({worker_binary(), "metadata", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"--waveform", "--samples-per-pixel", "=512", "--bits", "=8", "--jobs"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
}

TEST(MetadataCli, PrintsOneLinePerFileInOrderAndExitsOneWhenAFileFails) {
  ScratchDir dir("yw-mcli");
  std::vector<std::string> argv = {worker_binary(), "metadata", "--jobs", "2"};
  for (int i = 0; i < 4; ++i) {
    const auto f = dir / ("f" + std::to_string(i) + ".wav");
    ASSERT_TRUE(run_tool({"sox", "-n", "-r", "22050", "-c", "1", f.string(), "synth",
                          std::to_string(1 + i), "sine", "300"}));
    argv.push_back(f.string());
  }
  std::ofstream(dir / "bad.wav") << "not audio";
  argv.insert(argv.begin() + 5, (dir / "bad.wav").string());
  const auto r = run_process(argv);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("bad.wav"), std::string::npos) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    const json j = json::parse(line);
    EXPECT_EQ(j["file"], (dir / ("f" + std::to_string(n) + ".wav")).string());
    EXPECT_NEAR(j["format"]["duration_seconds"].get<double>(), 1.0 + n, 1e-6);
    ++n;
  }
  EXPECT_EQ(n, 4);
}

TEST(MetadataCli, WaveformFileAndUsageErrors) {
  ScratchDir dir("yw-mcli");
  const auto f = dir / "a.wav";
  ASSERT_TRUE(
      run_tool({"sox", "-n", "-r", "8000", "-c", "2", f.string(), "synth", "2", "sine", "300"}));
  const auto out = dir / "peaks.json";
  auto r = run_process({worker_binary(), "metadata", f.string(), "--waveform", out.string(),
                        "--samples-per-pixel", "160", "--bits", "16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["waveform"], out.string());
  std::ifstream in(out);
  const json w = json::parse(in);
  EXPECT_EQ(w["samples_per_pixel"], 160);
  EXPECT_EQ(w["bits"], 16);
  EXPECT_EQ(w["length"], 100);

  r = run_process(
      {worker_binary(), "metadata", f.string(), f.string(), "--waveform", out.string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = run_process({worker_binary(), "metadata", f.string(), "--bits", "12"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = run_process({worker_binary(), "metadata"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

}  // namespace
}  // namespace yw::test
