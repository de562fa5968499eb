#pragma once
// Small file helpers of the storage tests (tests/metadata/storage_test.cpp and
// tests/storage/supabase_storage_test.cpp).
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

}  // namespace yw::test
