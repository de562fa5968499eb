// The built-in separator on a General MIDI piece rendered by fluidsynth (FluidR3 GM), drums and
// the rest rendered separately so the mixture is their exact sum (build-and-separation.md §5).
// percussive is scored against the drums, harmonic against the rest, by SDR, and each must beat
// the mixture itself used as the estimate by at least 3 dB.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/process.hpp"
#include "yw/models/separator.hpp"

namespace {

constexpr const char* kSoundFont = "/usr/share/sounds/sf2/FluidR3_GM.sf2";

// A format-0 Standard MIDI File writer: (tick, status, data...) events, sorted, VLQ deltas.
class Midi {
 public:
  void note(int tick, int len, int ch, int key, int vel) {
    ev_.push_back(
        {tick,
         1,
         {static_cast<uint8_t>(0x90 | ch), static_cast<uint8_t>(key), static_cast<uint8_t>(vel)}});
    ev_.push_back({tick + len, 0, {static_cast<uint8_t>(0x80 | ch), static_cast<uint8_t>(key), 0}});
  }
  void program(int ch, int prog) {
    ev_.push_back({0, 0, {static_cast<uint8_t>(0xC0 | ch), static_cast<uint8_t>(prog)}});
  }
  void save(const std::string& path) {
    std::stable_sort(ev_.begin(), ev_.end(), [](const Event& a, const Event& b) {
      return a.tick != b.tick ? a.tick < b.tick : a.order < b.order;  // note-offs first
    });
    std::vector<uint8_t> trk{0x00, 0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20};  // 120 bpm
    int last = 0;
    for (const auto& e : ev_) {
      vlq(trk, e.tick - last);
      last = e.tick;
      trk.insert(trk.end(), e.bytes.begin(), e.bytes.end());
    }
    vlq(trk, 960);
    trk.insert(trk.end(), {0xFF, 0x2F, 0x00});
    std::vector<uint8_t> f{'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 0, 0, 1, 0x01, 0xE0};  // 480 TPQ
    f.insert(f.end(), {'M', 'T', 'r', 'k'});
    const auto n = static_cast<uint32_t>(trk.size());
    f.insert(f.end(), {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
                       static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)});
    f.insert(f.end(), trk.begin(), trk.end());
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(f.data()), static_cast<std::streamsize>(f.size()));
  }

 private:
  struct Event {
    int tick;
    int order;
    std::vector<uint8_t> bytes;
  };
  static void vlq(std::vector<uint8_t>& out, int v) {
    uint8_t buf[5];
    int n = 0;
    buf[n++] = static_cast<uint8_t>(v & 0x7F);
    while ((v >>= 7) > 0)
      buf[n++] = static_cast<uint8_t>(0x80 | (v & 0x7F));
    while (n > 0)
      out.push_back(buf[--n]);
  }
  std::vector<Event> ev_;
};

constexpr int kBeat = 480;
constexpr int kBars = 8;

void write_drums(const std::string& path) {
  Midi m;
  for (int bar = 0; bar < kBars; ++bar) {
    const int t = bar * 4 * kBeat;
    for (int b = 0; b < 4; ++b)
      m.note(t + b * kBeat, kBeat / 4, 9, b % 2 ? 38 : 36, 110);  // kick / snare
    for (int e = 0; e < 8; ++e)
      m.note(t + e * kBeat / 2, kBeat / 4, 9, 42, 80);  // closed hi-hat
  }
  m.save(path);
}

void write_rest(const std::string& path) {
  Midi m;
  m.program(0, 48);  // string ensemble
  m.program(1, 33);  // fingered bass
  m.program(2, 19);  // church organ
  const int chords[4][3] = {{60, 64, 67}, {57, 60, 64}, {53, 57, 60}, {55, 59, 62}};
  for (int bar = 0; bar < kBars; ++bar) {
    const int t = bar * 4 * kBeat;
    const auto& c = chords[bar % 4];
    for (int k : c)
      m.note(t, 4 * kBeat - 10, 0, k, 70);
    m.note(t, 4 * kBeat - 10, 2, c[0] + 12, 60);
    for (int b = 0; b < 4; ++b)
      m.note(t + b * kBeat, kBeat - 20, 1, c[0] - 24, 90);
  }
  m.save(path);
}

yw::models::Audio render(const std::string& midi, const std::string& wav) {
  const auto r =
      yw::test::run_process({"fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.3", "-r",
                             "44100", "-O", "float", "-T", "wav", "-F", wav, kSoundFont, midi});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return yw::models::load_audio(wav);
}

double sdr(const yw::models::Audio& truth, const std::vector<float>& estimate) {
  double s = 0.0, e = 0.0;
  for (size_t i = 0; i < truth.samples.size(); ++i) {
    s += static_cast<double>(truth.samples[i]) * truth.samples[i];
    const double d = static_cast<double>(truth.samples[i]) - estimate[i];
    e += d * d;
  }
  return 10.0 * std::log10(s / e);
}

TEST(HpssOracle, BeatsTheMixtureOnAFluidsynthRenderByThreeDb) {
  ASSERT_TRUE(std::filesystem::exists(kSoundFont))
      << kSoundFont << " missing: install fluid-soundfont-gm (scripts/lib/deps.sh)";
  const std::string dir = yw::test::make_temp_dir("yw_hpss_oracle");
  write_drums(dir + "/drums.mid");
  write_rest(dir + "/rest.mid");
  auto drums = render(dir + "/drums.mid", dir + "/drums.wav");
  auto rest = render(dir + "/rest.mid", dir + "/rest.wav");
  ASSERT_EQ(drums.channels, 2);
  ASSERT_EQ(rest.channels, 2);
  // Same length (renders end with their last release), then the exact sum.
  const int64_t frames = std::max(drums.frames, rest.frames);
  auto pad = [frames](yw::models::Audio& a) {
    auto b = yw::models::Audio::zeros(a.sample_rate, a.channels, frames);
    for (int c = 0; c < a.channels; ++c)
      std::copy(a.channel(c), a.channel(c) + a.frames, b.channel(c));
    a = std::move(b);
  };
  pad(drums);
  pad(rest);
  auto mix = yw::models::Audio::zeros(44100, 2, frames);
  for (size_t i = 0; i < mix.samples.size(); ++i)
    mix.samples[i] = drums.samples[i] + rest.samples[i];

  auto sep = yw::models::open_separator({});
  const auto stems = sep->separate(mix);
  ASSERT_EQ(stems[0].name, "harmonic");
  ASSERT_EQ(stems[1].name, "percussive");
  const double perc = sdr(drums, stems[1].audio.samples);
  const double perc_base = sdr(drums, mix.samples);
  const double harm = sdr(rest, stems[0].audio.samples);
  const double harm_base = sdr(rest, mix.samples);
  std::printf(
      "hpss SDR on %.1f s: percussive vs drums %.2f dB (mixture %.2f dB, +%.2f); "
      "harmonic vs rest %.2f dB (mixture %.2f dB, +%.2f)\n",
      mix.duration_seconds(), perc, perc_base, perc - perc_base, harm, harm_base, harm - harm_base);
  EXPECT_GE(perc - perc_base, 3.0);
  EXPECT_GE(harm - harm_base, 3.0);
  if (HasFailure())
    std::printf("renders kept in %s\n", dir.c_str());
  else
    std::filesystem::remove_all(dir);
}

}  // namespace
