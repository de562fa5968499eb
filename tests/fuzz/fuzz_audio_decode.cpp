// Any byte string handed to the decoder as a file must end in a result or a yw::Error, never in a
// crash, a hang, an unbounded allocation or another exception type.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "yw/common/error.hpp"
#include "yw/common/log.hpp"
#include "yw/kernels/audio.hpp"

namespace {

std::string scratch_path() {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/yw-fuzz-audio-" + std::to_string(getpid());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = scratch_path();
  static const bool quiet = [] {
    yw::set_log_level(yw::LogLevel::error);
    return true;
  }();
  (void)quiet;
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  try {
    (void)yw::probe_audio(path);
  } catch (const yw::Error&) {
  }
  try {
    auto reader = yw::AudioReader::open(path);
    const auto& info = reader->info();
    // The decoder's own sanity checks must have refused absurd headers before this.
    if (info.channels <= 0 || info.channels > 64 || info.sample_rate <= 0) __builtin_trap();
    std::vector<float> f(4096 * static_cast<std::size_t>(info.channels));
    std::vector<std::int16_t> s(4096 * static_cast<std::size_t>(info.channels));
    // A bounded amount of decoding per input keeps the fuzzer fast; corrupt streams show early.
    for (int i = 0; i < 64; ++i) {
      const bool use_float = (i % 2) == 0;
      const std::size_t n =
          use_float ? reader->read_float(f.data(), 4096) : reader->read_int16(s.data(), 4096);
      if (n == 0) break;
      if (n > 4096) __builtin_trap();
    }
  } catch (const yw::Error&) {
  }
  return 0;
}
