#pragma once
// Helpers shared by the metadata tests: generated audio (sox/ffmpeg, never committed files) and a
// scratch directory per test.
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/process.hpp"

namespace yw::test {

// Runs a tool and fails the current test (with its stderr) when it exits non-zero.
inline bool run_tool(const std::vector<std::string>& argv) {
  const auto r = run_process(argv);
  if (r.exit_code != 0) {
    ADD_FAILURE() << argv[0] << " failed (" << r.exit_code << "): " << r.err;
    return false;
  }
  return true;
}

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix) : path_(make_temp_dir(prefix)) {}
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace yw::test
