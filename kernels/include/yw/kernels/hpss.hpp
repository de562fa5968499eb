#pragma once
// Median-filter harmonic/percussive separation (the built-in separator's core).
// ref: Fitzgerald, "Harmonic/percussive separation using median filtering" (DAFx 2010), as in
// librosa.decompose.hpss with soft masks (margin 1): harmonic = median over time of |X|,
// percussive = median over frequency of |X|, mask_h = H^p / (H^p + P^p), mask_p = 1 - mask_h.
//
// Contract (shared by hpss_cpu and hpss_cuda):
//  - The STFT is yw::StftConfig's (stft.hpp): zero-padded, centred, periodic Hann, perfect
//    reconstruction. The two masks sum to one in every bin (0.5 each where both medians are 0),
//    so harmonic + percussive == input up to float rounding (about 1e-6 of full scale).
//  - Medians use the window clipped to the spectrogram (no reflection at the edges); for an even
//    number of values the upper middle one is taken.
//  - Frames are processed in blocks of block_frames with the harmonic filter's context around
//    each block, so memory is O(block) in spectrum space whatever the length; the result does not
//    depend on block_frames.
//  - One channel per call; any length >= 1 sample; silence gives silent stems.
#include <cstdint>

#include "yw/kernels/stft.hpp"

namespace yw {

// Defaults, at 44.1 kHz: 93 ms frames (10.8 Hz bins, enough to tell a bass line from a kick),
// a 0.39 s time median and a 330 Hz frequency median. On the fluidsynth oracle piece this beat
// n_fft 2048 / hop 512 / 31 x 31 by about 3 dB SDR on both stems.
struct HpssConfig {
  StftConfig stft{4096, 1024};
  int harmonic_frames = 17;  // median length along time (odd)
  int percussive_bins = 31;  // median length along frequency (odd)
  float power = 2.0f;        // soft-mask exponent
  int block_frames = 512;    // frames per processing block (memory bound)
};

// Throws yw::Error when the configuration is unusable (even or < 1 filter lengths, bad STFT).
void validate(const HpssConfig& cfg);

// Separates one channel: x, harmonic and percussive each hold n samples (host memory).
void hpss_cpu(const HpssConfig& cfg, const float* x, int64_t n, float* harmonic, float* percussive);

}  // namespace yw
