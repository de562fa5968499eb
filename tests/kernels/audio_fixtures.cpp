#include "kernels/audio_fixtures.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "support/process.hpp"

namespace yw::test {

ScratchDir::ScratchDir(const std::string& prefix) : path_(make_temp_dir(prefix)) {}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

const char* to_string(Content c) {
  switch (c) {
    case Content::chords:
      return "chords";
    case Content::noise:
      return "noise";
    case Content::speech:
      return "speech";
    case Content::silence:
      return "silence";
    case Content::near_silence:
      return "near_silence";
  }
  return "?";
}

void make_audio(const std::filesystem::path& path, Content content, int rate, int channels,
                double seconds) {
  const std::string d = fmt::format("{:.3f}", seconds);
  std::vector<std::string> argv = {
      "sox", "-q", "-R",         "-n", "-r", std::to_string(rate), "-c", std::to_string(channels),
      "-b",  "16", path.string()};
  // sox -R: repeatable noise and no dither, so a failure can be reproduced.
  const auto add = [&](std::initializer_list<std::string> more) {
    argv.insert(argv.end(), more.begin(), more.end());
  };
  switch (content) {
    case Content::chords:
      // Plucked chords moving every 2 s, with a little noise so no frame is exactly periodic.
      add({"synth",     d,       "pluck", "%-12",  "pluck",   "%-5",   "pluck",
           "%0",        "pluck", "%4",    "pluck", "%7",      "synth", d,
           "pinknoise", "mix",   "vol",   "0.6",   "tremolo", "0.5",   "40"});
      break;
    case Content::noise:
      add({"synth", d, "pinknoise", "vol", "0.5"});
      break;
    case Content::speech:
      // Formant-like bands of noise switched on and off at a syllable rate.
      add({"synth", d, "brownnoise", "synth", d, "sine", "amod", "4", "100", "bandpass", "700",
           "400", "tremolo", "3.3", "90", "vol", "4"});
      break;
    case Content::silence:
      add({"trim", "0", d});
      break;
    case Content::near_silence:
      add({"synth", d, "whitenoise", "vol", "0.0004"});
      break;
  }
  const auto r = run_process(argv);
  if (r.exit_code != 0)
    throw std::runtime_error(fmt::format("sox failed for {}: {}", path.string(), r.err));
}

void ffmpeg_convert(const std::filesystem::path& in, const std::filesystem::path& out,
                    const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ffmpeg", "-nostdin", "-loglevel", "error",
                                   "-y",     "-i",       in.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(out.string());
  const auto r = run_process(argv);
  if (r.exit_code != 0)
    throw std::runtime_error(fmt::format("ffmpeg failed for {}: {}", out.string(), r.err));
}

std::vector<unsigned char> wav_bytes(int rate, int channels, const std::vector<std::int16_t>& pcm) {
  std::vector<unsigned char> b;
  const auto u32 = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
      b.push_back(static_cast<unsigned char>((v >> (8 * i)) & 0xFF));
  };
  const auto u16 = [&](std::uint32_t v) {
    b.push_back(static_cast<unsigned char>(v & 0xFF));
    b.push_back(static_cast<unsigned char>((v >> 8) & 0xFF));
  };
  const auto tag = [&](const char* t) {
    for (int i = 0; i < 4; ++i)
      b.push_back(static_cast<unsigned char>(t[i]));
  };
  const auto data_bytes = static_cast<std::uint32_t>(pcm.size() * 2);
  tag("RIFF");
  u32(36 + data_bytes);
  tag("WAVE");
  tag("fmt ");
  u32(16);
  u16(1);
  u16(static_cast<std::uint32_t>(channels));
  u32(static_cast<std::uint32_t>(rate));
  u32(static_cast<std::uint32_t>(rate * channels * 2));
  u16(static_cast<std::uint32_t>(channels * 2));
  u16(16);
  tag("data");
  u32(data_bytes);
  for (const std::int16_t s : pcm)
    u16(static_cast<std::uint16_t>(s));
  return b;
}

void write_bytes(const std::filesystem::path& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

FpcalcResult run_fpcalc(const std::filesystem::path& file, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"fpcalc", "-ignore-errors"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(file.string());
  const auto r = run_process(argv);
  FpcalcResult out;
  out.err = r.err;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("DURATION=", 0) == 0) out.duration_line = line;
    if (line.rfind("FINGERPRINT=", 0) == 0) {
      out.fingerprint = line.substr(12);
      out.ok = true;
    }
  }
  return out;
}

std::vector<std::uint32_t> parse_items(const std::string& csv) {
  std::vector<std::uint32_t> items;
  std::istringstream in(csv);
  std::string tok;
  while (std::getline(in, tok, ','))
    if (!tok.empty()) items.push_back(static_cast<std::uint32_t>(std::stoul(tok)));
  return items;
}

}  // namespace yw::test
