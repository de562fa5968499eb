#include <algorithm>
#include <cmath>
#include <filesystem>

#include "yw/common/error.hpp"
#include "yw/kernels/audio.hpp"
#include "yw/models/separator.hpp"

namespace yw::models {

Audio load_audio(const std::filesystem::path& path) {
  auto reader = AudioReader::open(path);
  const int channels = reader->info().channels;
  const auto nch = static_cast<size_t>(channels);
  // Decoded straight into the planar buffer when the length is known, so the peak is the song
  // plus one block (a 3-minute stereo song: 63 MB, not twice that); a stream that runs longer
  // than announced, or one of unknown length, grows per channel and is joined at the end.
  const int64_t expected = std::max<int64_t>(0, reader->info().frames);
  std::vector<float> planar(nch * static_cast<size_t>(expected));
  std::vector<std::vector<float>> extra(nch);
  constexpr size_t kBlock = 16384;
  std::vector<float> block(kBlock * nch);
  int64_t got = 0;
  for (;;) {
    const size_t n = reader->read_float(block.data(), kBlock);
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i, ++got) {
      for (size_t c = 0; c < nch; ++c) {
        const float v = block[i * nch + c];
        if (got < expected)
          planar[c * static_cast<size_t>(expected) + static_cast<size_t>(got)] = v;
        else
          extra[c].push_back(v);
      }
    }
  }
  YW_CHECK_INPUT(got > 0, "{}: no audio samples", path.string());
  Audio a;
  a.sample_rate = reader->info().sample_rate;
  a.channels = channels;
  a.frames = got;
  if (got <= expected) {
    // Shorter than announced: close the gaps channel by channel (each moves left).
    for (size_t c = 1; c < nch && got < expected; ++c)
      std::copy_n(planar.begin() + static_cast<std::ptrdiff_t>(c * static_cast<size_t>(expected)),
                  got, planar.begin() + static_cast<std::ptrdiff_t>(c * static_cast<size_t>(got)));
    planar.resize(nch * static_cast<size_t>(got));
    a.samples = std::move(planar);
    return a;
  }
  a.samples.reserve(nch * static_cast<size_t>(got));
  for (size_t c = 0; c < nch; ++c) {
    const auto first =
        planar.begin() + static_cast<std::ptrdiff_t>(c * static_cast<size_t>(expected));
    a.samples.insert(a.samples.end(), first, first + expected);
    a.samples.insert(a.samples.end(), extra[c].begin(), extra[c].end());
    extra[c] = {};
  }
  return a;
}

}  // namespace yw::models

namespace yw::models {

ClipMode parse_clip_mode(std::string_view text, std::string_view field) {
  if (text == "rescale") return ClipMode::rescale;
  if (text == "clamp") return ClipMode::clamp;
  if (text == "none") return ClipMode::none;
  YW_THROW_INPUT("{}: must be 'rescale', 'clamp' or 'none', got '{}'", field, text);
}

void prevent_clip(Audio& stem, ClipMode mode) {
  if (mode == ClipMode::none) return;
  if (mode == ClipMode::clamp) {
    for (float& v : stem.samples)
      v = std::clamp(v, -0.99f, 0.99f);
    return;
  }
  // wav / max(1.01 * wav.abs().max(), 1), in float32 as torch computes it.
  float peak = 0.0f;
  for (const float v : stem.samples)
    peak = std::max(peak, std::abs(v));
  const float scale = std::max(1.01f * peak, 1.0f);
  if (scale == 1.0f) return;
  for (float& v : stem.samples)
    v = v / scale;
}

}  // namespace yw::models
