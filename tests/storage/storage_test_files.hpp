#pragma once
// Small file helpers of the storage tests (tests/metadata/storage_test.cpp and
// tests/storage/supabase_storage_test.cpp).
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace yw::test {

inline std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out << bytes;
}

// Fake "audio" bytes: a RIFF header start is enough, storage never decodes.
inline std::string some_audio(size_t n) {
  std::string s = "RIFF\x24\x00\x00\x00WAVEfmt ";
  while (s.size() < n)
    s.push_back(static_cast<char>(s.size() * 7 % 251));
  return s;
}

// A real 16-bit mono WAV of a 440 Hz tone, for jobs that decode what they download.
inline std::string tone_wav(int rate, int ms) {
  const auto frames = static_cast<std::uint32_t>(static_cast<long long>(rate) * ms / 1000);
  std::string s;
  const auto put = [&s](std::uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i)
      s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  s += "RIFF";
  put(36 + frames * 2, 4);
  s += "WAVEfmt ";
  put(16, 4);
  put(1, 2);  // PCM
  put(1, 2);  // mono
  put(static_cast<std::uint32_t>(rate), 4);
  put(static_cast<std::uint32_t>(rate) * 2, 4);
  put(2, 2);
  put(16, 2);
  s += "data";
  put(frames * 2, 4);
  for (std::uint32_t i = 0; i < frames; ++i) {
    const double x = 0.5 * std::sin(2.0 * M_PI * 440.0 * i / rate);
    put(static_cast<std::uint16_t>(static_cast<std::int16_t>(std::lround(x * 32767.0))), 2);
  }
  return s;
}

}  // namespace yw::test
