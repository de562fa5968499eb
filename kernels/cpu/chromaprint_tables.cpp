// Chromaprint's host tables (docs/chromaprint.md §1.5-1.6: window, bands). Its own file, in
// yw_kernels_core, so that the CUDA twin and the GPU tests link the tables without the decoder
// (FFmpeg, sndfile) that shares yw_kernels.
#include <cmath>

#include "yw/kernels/chromaprint_tables.hpp"
#include "yw/kernels/fingerprint.hpp"

namespace yw {
namespace chromaprint_detail {

const Tables& tables() {
  static const Tables t = [] {
    Tables out;
    out.window.resize(kChromaprintFrameSize);
    const double pi = 3.14159265358979323846;
    for (int n = 0; n < kChromaprintFrameSize; ++n) {
      const double w = 0.54 - 0.46 * std::cos(2.0 * pi * n / (kChromaprintFrameSize - 1));
      out.window[static_cast<std::size_t>(n)] = static_cast<float>(w * (1.0 / 32767.0));
    }
    out.band.assign(kChromaprintFrameSize / 2 + 1, -1);
    for (int i = kChromaBinLo; i < kChromaBinHi; ++i)
      out.band[static_cast<std::size_t>(i)] = chroma_band(i);
    return out;
  }();
  return t;
}

}  // namespace chromaprint_detail

}  // namespace yw
