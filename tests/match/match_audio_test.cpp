// Matching accuracy on real music (label oracle): Debian's hyperrogue-music and
// planetblupi-music-ogg tracks, re-encoded with the real ffmpeg as users' uploads would be, then
// fingerprinted by the worker's fpcalc-identical fingerprinter and matched through the same
// FingerprintIndex the worker uses (the CPU twin counts the bits).
//  - every lossy re-encode (MP3 64 k and 320 k, AAC 128 k, Opus 64 k, Vorbis q3) must score >= 0.75
//    against its original, >= 99 % of them in the whole corpus, and the score must equal the
//    plain reference compare2 on the same items;
//  - no pair of different tracks scores >= 0.75, directly or through the index;
//  - >= 95 % of 20 s MP3 excerpts from mid-track are located by clip mode at the right offset
//    (± 1 s);
//  - silence and near-silence (noise at -60 dBFS, a quiet hum) match nothing and are not indexed.
// Prints its figures, for the README.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <mutex>

#include <fmt/format.h>

#include "match/compare2_reference.hpp"
#include "support/process.hpp"
#include "yw/kernels/fingerprint.hpp"
#include "yw/kernels/fingerprint_match.hpp"
#include "yw/worker/fingerprint_index.hpp"

namespace yw::worker {
namespace {

namespace fs = std::filesystem;

struct Track {
  std::string path;
  double fingerprint_length;  // seconds fingerprinted for the catalogue (whole-track for clips)
};

// The corpus: every decodable hyperrogue track (48-136 s) and six planetblupi tracks (10 min
// and more; their first 600 s are catalogued for the excerpt test).
std::vector<std::string> corpus() {
  std::vector<std::string> out;
  for (const auto* dir : {"/usr/share/hyperrogue/music", "/usr/share/planetblupi/music"}) {
    if (!fs::is_directory(dir)) continue;
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".ogg") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    if (std::string(dir).find("planetblupi") != std::string::npos && files.size() > 6)
      files.resize(6);
    for (auto& f : files) {
      // Three of hyperrogue's files are not Ogg streams ffmpeg can open; the corpus is what the
      // reference encoder can re-encode.
      if (test::run_process({"ffprobe", "-v", "error", f}).exit_code == 0) out.push_back(f);
    }
  }
  return out;
}

std::string tmp_dir() {
  static const std::string dir = test::make_temp_dir("yw-match-audio");
  return dir;
}

// ffmpeg `args` on `src` into a temporary file with extension `ext`; its fingerprint.
FileFingerprint encoded(const std::string& src, const std::vector<std::string>& in_args,
                        const std::vector<std::string>& out_args, const std::string& ext,
                        double length = 120.0) {
  static std::atomic<int> n{0};
  const std::string out = fmt::format("{}/v{}.{}", tmp_dir(), n++, ext);
  std::vector<std::string> argv = {"ffmpeg", "-nostdin", "-v", "error", "-y"};
  argv.insert(argv.end(), in_args.begin(), in_args.end());
  argv.insert(argv.end(), {"-i", src});
  argv.insert(argv.end(), out_args.begin(), out_args.end());
  argv.push_back(out);
  const auto r = test::run_process(argv);
  if (r.exit_code != 0) throw std::runtime_error("ffmpeg failed: " + r.err);
  auto fp = fingerprint_file(out, length);
  fs::remove(out);
  return fp;
}

// Runs fn(i) for i in [0, n) on two threads (the CI machine has two cores).
template <typename Fn>
void parallel(std::size_t n, Fn fn) {
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i; (i = next++) < n;)
      fn(i);
  };
  auto other = std::async(std::launch::async, work);
  work();
  other.get();
}

bool require_corpus(const std::vector<std::string>& tracks) {
  if (tracks.size() >= 15) return true;
  if (std::getenv("CI") != nullptr) {
    ADD_FAILURE() << "music corpus missing: apt-get install hyperrogue-music planetblupi-music-ogg";
  }
  return false;
}

TEST(MatchAudio, LossyReEncodesScoreAtLeast075AndDifferentTracksNever) {
  const auto tracks = corpus();
  if (!require_corpus(tracks)) GTEST_SKIP() << "music corpus missing (scripts/lib/deps.sh)";
  struct Codec {
    const char* name;
    std::vector<std::string> args;
    const char* ext;
  };
  const std::vector<Codec> codecs = {
      {"mp3_64k", {"-c:a", "libmp3lame", "-b:a", "64k"}, "mp3"},
      {"mp3_320k", {"-c:a", "libmp3lame", "-b:a", "320k"}, "mp3"},
      {"aac_128k", {"-c:a", "aac", "-b:a", "128k"}, "m4a"},
      {"opus_64k", {"-c:a", "libopus", "-b:a", "64k"}, "opus"},
      {"vorbis_q3", {"-c:a", "libvorbis", "-q:a", "3"}, "ogg"},
  };
  // Originals: the first 90 s (decoded losslessly to FLAC, so the original is what was shipped).
  std::vector<FileFingerprint> orig(tracks.size());
  parallel(tracks.size(), [&](std::size_t i) {
    orig[i] = encoded(tracks[i], {}, {"-t", "90", "-c:a", "flac"}, "flac");
  });
  FingerprintIndex index(false);
  for (std::size_t i = 0; i < tracks.size(); ++i)
    ASSERT_TRUE(index.upsert(std::to_string(i), orig[i].items, orig[i].duration_seconds))
        << tracks[i];

  const std::size_t n = tracks.size() * codecs.size();
  std::vector<float> scores(n), found(n);
  std::vector<std::string> wrong(n);
  parallel(n, [&](std::size_t k) {
    const std::size_t t = k / codecs.size();
    const auto& c = codecs[k % codecs.size()];
    std::vector<std::string> args = {"-t", "90"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const auto v = encoded(tracks[t], {}, args, c.ext);
    scores[k] = compare2(orig[t].items, v.items, kAcoustidMaxOffset).score;
    EXPECT_EQ(scores[k], test::reference_compare2(orig[t].items, v.items, kAcoustidMaxOffset));
    for (const auto& m : index.match(v.items, v.duration_seconds, {}, &bit_errors_batch_cpu)) {
      if (m.record_id == std::to_string(t)) {
        found[k] = m.score;
      } else if (m.score >= kSameRecordingThreshold) {
        wrong[k] = fmt::format("{} matched {} at {}", k, m.record_id, m.score);
      }
    }
  });
  std::size_t pass = 0, pass_index = 0;
  for (std::size_t k = 0; k < n; ++k) {
    pass += scores[k] >= 0.75f;
    pass_index += found[k] >= 0.75f && found[k] == scores[k];
    EXPECT_TRUE(wrong[k].empty()) << wrong[k];
    if (scores[k] < 0.75f)
      std::printf("below 0.75: %s %s %.3f\n", tracks[k / codecs.size()].c_str(),
                  codecs[k % codecs.size()].name, static_cast<double>(scores[k]));
  }
  for (std::size_t c = 0; c < codecs.size(); ++c) {
    std::vector<float> s;
    for (std::size_t t = 0; t < tracks.size(); ++t)
      s.push_back(scores[t * codecs.size() + c]);
    std::sort(s.begin(), s.end());
    std::printf("%-10s min %.3f median %.3f\n", codecs[c].name, static_cast<double>(s.front()),
                static_cast<double>(s[s.size() / 2]));
  }
  std::printf("re-encodes >= 0.75: %zu / %zu directly, %zu / %zu through the index\n", pass, n,
              pass_index, n);
  EXPECT_GE(static_cast<double>(pass), 0.99 * static_cast<double>(n));
  EXPECT_GE(static_cast<double>(pass_index), 0.99 * static_cast<double>(n));

  // Every pair of different tracks, unlimited offset (the most lenient compare2).
  float worst = 0.0f;
  for (std::size_t i = 0; i < tracks.size(); ++i)
    for (std::size_t j = 0; j < tracks.size(); ++j)
      if (i != j) worst = std::max(worst, compare2(orig[i].items, orig[j].items, 0).score);
  std::printf("different tracks: highest compare2 %.3f over %zu pairs\n",
              static_cast<double>(worst), tracks.size() * (tracks.size() - 1));
  EXPECT_LT(worst, 0.75f);
}

TEST(MatchAudio, MidTrackExcerptsAreLocatedAndSilenceNeverMatches) {
  const auto tracks = corpus();
  if (!require_corpus(tracks)) GTEST_SKIP() << "music corpus missing (scripts/lib/deps.sh)";
  // The catalogue holds whole tracks (the first 600 s of the long ones).
  std::vector<FileFingerprint> orig(tracks.size());
  parallel(tracks.size(), [&](std::size_t i) { orig[i] = fingerprint_file(tracks[i], 600.0); });
  FingerprintIndex index(true);
  for (std::size_t i = 0; i < tracks.size(); ++i)
    ASSERT_TRUE(index.upsert(std::to_string(i), orig[i].items, orig[i].duration_seconds));

  // 20 s from the middle of the catalogued part, as a 128 k MP3.
  std::vector<double> start(tracks.size()), got(tracks.size(), -1000.0);
  std::vector<float> score(tracks.size());
  parallel(tracks.size(), [&](std::size_t i) {
    const double fingerprinted = static_cast<double>(orig[i].items.size()) * kItemSeconds;
    start[i] = std::floor(fingerprinted / 2 - 10);
    const auto clip = encoded(tracks[i], {"-ss", fmt::format("{}", start[i])},
                              {"-t", "20", "-c:a", "libmp3lame", "-b:a", "128k"}, "mp3");
    MatchOptions o;
    o.mode = MatchMode::clip;
    const auto m = index.match(clip.items, clip.duration_seconds, o, &bit_errors_batch_cpu);
    if (!m.empty() && m[0].record_id == std::to_string(i)) {
      got[i] = m[0].offset_seconds;
      score[i] = m[0].score;
    }
  });
  std::size_t located = 0;
  for (std::size_t i = 0; i < tracks.size(); ++i) {
    const bool ok = std::abs(got[i] - start[i]) <= 1.0;
    located += ok;
    if (!ok)
      std::printf("excerpt not located: %s at %.1f s (got %.1f)\n", tracks[i].c_str(), start[i],
                  got[i]);
  }
  std::printf("20 s excerpts located within 1 s: %zu / %zu\n", located, tracks.size());
  EXPECT_GE(static_cast<double>(located), 0.95 * static_cast<double>(tracks.size()));

  // Silence and near-silence: never indexed, never matched, in any mode.
  MatchOptions both;
  both.mode = MatchMode::both;
  const std::vector<std::vector<std::string>> quiet = {
      {"-f", "lavfi", "-t", "60", "-i", "anullsrc=r=44100:cl=stereo"},
      {"-f", "lavfi", "-t", "60", "-i", "anoisesrc=a=0.001:c=pink:r=44100"},
      {"-f", "lavfi", "-t", "60", "-i", "sine=f=50:r=44100,volume=0.001"},
  };
  for (const auto& src : quiet) {
    std::vector<std::string> argv = {"ffmpeg", "-nostdin", "-v", "error", "-y"};
    argv.insert(argv.end(), src.begin(), src.end());
    const std::string out = tmp_dir() + "/quiet.wav";
    argv.push_back(out);
    ASSERT_EQ(test::run_process(argv).exit_code, 0);
    const auto fp = fingerprint_file(out, 120.0);
    fs::remove(out);
    EXPECT_TRUE(index.match(fp.items, fp.duration_seconds, both, &bit_errors_batch_cpu).empty())
        << src.back();
    FingerprintIndex alone(true);
    alone.upsert("quiet", fp.items, fp.duration_seconds);
    for (std::size_t i = 0; i < tracks.size(); i += 4) {
      for (const auto& m :
           alone.match(orig[i].items, orig[i].duration_seconds, both, &bit_errors_batch_cpu))
        ADD_FAILURE() << tracks[i] << " matched " << src.back() << " at " << m.score;
    }
  }
}

}  // namespace
}  // namespace yw::worker
