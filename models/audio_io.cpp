#include <algorithm>
#include <filesystem>

#include "yw/common/error.hpp"
#include "yw/kernels/audio.hpp"
#include "yw/models/separator.hpp"

namespace yw::models {

Audio load_audio(const std::filesystem::path& path) {
  auto reader = AudioReader::open(path);
  const int channels = reader->info().channels;
  // Streamed into planar channels, so the peak is the planar copy plus one block.
  std::vector<std::vector<float>> planar(static_cast<size_t>(channels));
  if (reader->info().frames > 0)
    for (auto& ch : planar)
      ch.reserve(static_cast<size_t>(reader->info().frames));
  constexpr size_t kBlock = 16384;
  std::vector<float> block(kBlock * static_cast<size_t>(channels));
  for (;;) {
    const size_t got = reader->read_float(block.data(), kBlock);
    if (got == 0) break;
    for (size_t i = 0; i < got; ++i)
      for (int c = 0; c < channels; ++c)
        planar[static_cast<size_t>(c)].push_back(
            block[i * static_cast<size_t>(channels) + static_cast<size_t>(c)]);
  }
  Audio a;
  a.sample_rate = reader->info().sample_rate;
  a.channels = channels;
  a.frames = static_cast<int64_t>(planar[0].size());
  YW_CHECK_INPUT(a.frames > 0, "{}: no audio samples", path.string());
  a.samples.reserve(static_cast<size_t>(a.frames * channels));
  for (auto& ch : planar) {
    a.samples.insert(a.samples.end(), ch.begin(), ch.end());
    ch = {};
  }
  return a;
}

}  // namespace yw::models
