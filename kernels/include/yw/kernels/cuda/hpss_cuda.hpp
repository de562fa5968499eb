#pragma once
// The CUDA twin of hpss_cpu (hpss.hpp): same configuration, same contract, same output up to
// float rounding (cuFFT versus FFTW). Host-only header: no CUDA types.
#include <cstdint>

#include "yw/kernels/hpss.hpp"

namespace yw {

// Separates one channel on CUDA device `device`: x, harmonic and percussive are host buffers of
// n samples (any memory; the twin stages them through its own pinned buffers). Synchronous:
// returns when both stems are written; x is only read before that. Device memory, per call, is
// O(block_frames * n_fft) plus the signal and the two stems. The signal is uploaded and the stems
// downloaded in pieces of about one 4096-frame block on their own streams, so copies overlap the
// kernels of neighbouring blocks; the values do not depend on it.
//
// State: each device gets, on first use, three streams and six pinned staging buffers of up to
// one piece each (about 17 MB each at the default 4096/1024 STFT), kept until the process exits.
// Thread-safe; calls on one device run one after another (they share that state), calls on
// different devices concurrently. Sets the calling thread's current device to `device`.
// Throws yw::Error naming the CUDA/cuFFT failure (no device, out of memory); in a build without
// CUDA it always throws.
void hpss_cuda(const HpssConfig& cfg, const float* x, int64_t n, float* harmonic, float* percussive,
               int device);

}  // namespace yw
