// fpcalc's libswresample conversion, from docs/chromaprint.md §1.3 (S16 planar path).
// ref: chromaprint.md §1.3.1 (order and mix), §1.3.2 (filter bank), §1.3.3 (stepping and edges)
#include "yw/kernels/fpcalc_resample.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "yw/common/error.hpp"

namespace yw {
namespace {

constexpr int kFilterSize = 16;
constexpr int kPhaseShift = 8;
constexpr double kCutoff = 0.8;
constexpr double kKaiserBeta = 9.0;
// Taps are stored padded to a multiple of this so the dot product runs on whole SIMD registers;
// channel buffers keep as many zero samples of slack after their end.
constexpr int kPad = 16;

// Modified Bessel function of the first kind, order 0: power series summed until it stops
// changing (this reproduced swr's coefficients exactly, chromaprint.md §1.3.2).
double bessel_i0(double x) {
  const double q = x * x / 4.0;
  double term = 1.0;
  double sum = 1.0;
  for (int k = 1; k < 500; ++k) {
    term *= q / (static_cast<double>(k) * k);
    const double next = sum + term;
    if (next == sum) break;
    sum = next;
  }
  return sum;
}

std::int16_t clip16(std::int64_t v) {
  return static_cast<std::int16_t>(std::clamp<std::int64_t>(v, -32768, 32767));
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Sum of x[i] * c[i] for i < n (n a multiple of kPad); c is 16-byte aligned by construction.
std::int32_t dot16(const std::int16_t* x, const std::int16_t* c, int n) {
#if defined(__x86_64__)
  __m128i acc = _mm_setzero_si128();
  for (int i = 0; i < n; i += 8) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + i));
    acc = _mm_add_epi32(acc, _mm_madd_epi16(a, b));
  }
  acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0x4E));
  acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0xB1));
  return _mm_cvtsi128_si32(acc);
#else
  std::int32_t acc = 0;
  for (int i = 0; i < n; ++i)
    acc += static_cast<std::int32_t>(x[i]) * c[i];
  return acc;
#endif
}

// L R L R ... -> L L ... and R R ...
void deinterleave_stereo(const std::int16_t* in, std::size_t frames, std::int16_t* left,
                         std::int16_t* right) {
  std::size_t i = 0;
#if defined(__x86_64__)
  // Eight frames at a time: each frame is one 32-bit lane; the halves are sign-extended to
  // 32 bits and packed back (exact, no saturation can occur).
  for (; i + 8 <= frames; i += 8) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 * i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 * i + 8));
    const __m128i la = _mm_srai_epi32(_mm_slli_epi32(a, 16), 16);
    const __m128i lb = _mm_srai_epi32(_mm_slli_epi32(b, 16), 16);
    const __m128i ra = _mm_srai_epi32(a, 16);
    const __m128i rb = _mm_srai_epi32(b, 16);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(left + i), _mm_packs_epi32(la, lb));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(right + i), _mm_packs_epi32(ra, rb));
  }
#endif
  for (; i < frames; ++i) {
    left[i] = in[2 * i];
    right[i] = in[2 * i + 1];
  }
}

// The hot loop of the "common" kernel (mod == 0: 44.1/22.05/88.2/48/96/24 kHz) for one or two
// channels: stereo outputs are mixed as floor((L + R + 1) / 2). `s`/`ph` are the window start
// and phase of the next output; they are advanced past the last output whose window ends at or
// before `last + L`. The AVX2 build of the same loop is chosen at run time when the CPU has it.
struct CommonLoop {
  const std::int16_t* c0;
  const std::int16_t* c1;  // null for mono
  std::int64_t base;
  const std::int16_t* bank;
  int Lp;
  std::int64_t P;
  std::int64_t step_s;
  std::int64_t step_ph;
};

inline std::int16_t mix_stereo(std::int32_t l, std::int32_t r) {
  return static_cast<std::int16_t>((16384 * l + 16384 * r + 16384) >> 15);
}

void common_loop_generic(const CommonLoop& k, std::int64_t last, std::int64_t& s, std::int64_t& ph,
                         std::vector<std::int16_t>& out) {
  while (s <= last) {
    const std::size_t off = static_cast<std::size_t>(s - k.base);
    const std::int16_t* row = k.bank + ph * k.Lp;
    const std::int16_t l =
        clip16((16384 + static_cast<std::int64_t>(dot16(k.c0 + off, row, k.Lp))) >> 15);
    if (k.c1 == nullptr) {
      out.push_back(l);
    } else {
      const std::int16_t r =
          clip16((16384 + static_cast<std::int64_t>(dot16(k.c1 + off, row, k.Lp))) >> 15);
      out.push_back(mix_stereo(l, r));
    }
    s += k.step_s;
    ph += k.step_ph;
    if (ph >= k.P) {
      ph -= k.P;
      ++s;
    }
  }
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) inline std::int32_t hsum_avx2(__m256i v) {
  __m128i x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4E));
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xB1));
  return _mm_cvtsi128_si32(x);
}

__attribute__((target("avx2"))) void common_loop_avx2(const CommonLoop& k, std::int64_t last,
                                                      std::int64_t& s, std::int64_t& ph,
                                                      std::vector<std::int16_t>& out) {
  while (s <= last) {
    const std::size_t off = static_cast<std::size_t>(s - k.base);
    const std::int16_t* row = k.bank + ph * k.Lp;
    __m256i a0 = _mm256_setzero_si256();
    __m256i a1 = _mm256_setzero_si256();
    if (k.c1 == nullptr) {
      for (int i = 0; i < k.Lp; i += 16) {
        const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + i));
        a0 = _mm256_add_epi32(
            a0, _mm256_madd_epi16(
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k.c0 + off + i)), c));
      }
      out.push_back(clip16((16384 + static_cast<std::int64_t>(hsum_avx2(a0))) >> 15));
    } else {
      for (int i = 0; i < k.Lp; i += 16) {
        const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + i));
        a0 = _mm256_add_epi32(
            a0, _mm256_madd_epi16(
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k.c0 + off + i)), c));
        a1 = _mm256_add_epi32(
            a1, _mm256_madd_epi16(
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k.c1 + off + i)), c));
      }
      const std::int16_t l = clip16((16384 + static_cast<std::int64_t>(hsum_avx2(a0))) >> 15);
      const std::int16_t r = clip16((16384 + static_cast<std::int64_t>(hsum_avx2(a1))) >> 15);
      out.push_back(mix_stereo(l, r));
    }
    s += k.step_s;
    ph += k.step_ph;
    if (ph >= k.P) {
      ph -= k.P;
      ++s;
    }
  }
}

bool have_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") != 0;
  return yes;
}
#endif

}  // namespace

struct FpcalcResampler::State {
  int in_rate = 0;
  int channels = 0;
  bool resample = false;

  // Filter: P phases (+1 interpolation row) of L taps, rows stored with stride Lp.
  int P = 1;
  int L = 0;
  int Lp = 0;
  std::vector<std::int16_t> bank;         // (P + 1) * L, the documented layout
  std::vector<std::int16_t> bank_padded;  // (P + 1) * Lp
  std::int64_t src_incr = 1;
  std::int64_t dst_incr = 1;
  std::int64_t div = 0;
  std::int64_t mod = 0;

  // Position of the next output in phase units, and its interpolation fraction.
  std::int64_t index = 0;
  std::int64_t frac = 0;

  // Per channel: the extended signal from position `base` on. Each vector's size is its
  // capacity (always at least `size + kPad`, the tail zero), the samples are [0, size).
  std::vector<std::vector<std::int16_t>> buf;
  std::size_t size = 0;
  std::int64_t base = 0;
  std::int64_t total_in = 0;  // real input frames seen
  bool started = false;       // left reflection in place
  bool flushed = false;
  std::vector<std::int16_t> head;  // interleaved frames held until the reflection can be built
  std::vector<std::int32_t> mix_weight;

  std::int64_t avail_end() const { return base + static_cast<std::int64_t>(size); }

  void build_filter() {
    const double factor = std::min(kFpcalcSampleRate * kCutoff / in_rate, 1.0);
    const int max_phases = 1 << kPhaseShift;
    const int g = std::gcd(kFpcalcSampleRate, in_rate);
    const int exact = kFpcalcSampleRate / g;
    P = exact <= max_phases ? exact : max_phases;
    L = std::max(static_cast<int>(std::ceil(kFilterSize / factor)), 1);
    if (L > 1) L = (L + 1) & ~1;
    Lp = (L + kPad - 1) / kPad * kPad;
    const int center = (L - 1) / 2;
    const double pi = 3.14159265358979323846;

    bank.assign(static_cast<std::size_t>(P + 1) * L, 0);
    // swr computes phases 0..P/2 and mirrors the rest when P is even.
    const int computed = (P % 2 != 0) ? P : P / 2 + 1;
    std::vector<double> tab(static_cast<std::size_t>(L));
    double norm = 0.0;
    for (int ph = 0; ph < computed; ++ph) {
      const double s = std::sin(pi * ph / P);
      for (int i = 0; i < L; ++i) {
        const double x =
            pi * ((static_cast<double>(i - center)) - static_cast<double>(ph) / P) * factor;
        double y;
        if (x == 0.0) {
          y = 1.0;
        } else if (factor == 1.0) {
          // sin(pi*(i-c) - pi*ph/P) written as +-sin(pi*ph/P), the way swr evaluates it.
          const bool odd = ((i - center) % 2) != 0;
          y = (odd ? s : -s) / x;
        } else {
          y = std::sin(x) / x;
        }
        const double w = 2.0 * x / (factor * L * pi);
        y *= bessel_i0(kKaiserBeta * std::sqrt(std::max(1.0 - w * w, 0.0)));
        tab[static_cast<std::size_t>(i)] = y;
        if (ph == 0) norm += y;
      }
      for (int i = 0; i < L; ++i) {
        const long v =
            std::lrintf(static_cast<float>(tab[static_cast<std::size_t>(i)] * 32768.0 / norm));
        bank[static_cast<std::size_t>(ph) * L + i] = clip16(v);
      }
      if (P % 2 == 0 && ph > 0) {
        for (int i = 0; i < L; ++i)
          bank[static_cast<std::size_t>(P - ph) * L + (L - 1 - i)] =
              bank[static_cast<std::size_t>(ph) * L + i];
      }
    }
    // Row P: phase 0 shifted one tap right; its first tap comes from swr's padded row end.
    for (int i = 1; i < L; ++i)
      bank[static_cast<std::size_t>(P) * L + i] = bank[static_cast<std::size_t>(i - 1)];
    bank[static_cast<std::size_t>(P) * L] =
        (L % 8 == 0) ? bank[static_cast<std::size_t>(L - 1)] : 0;

    bank_padded.assign(static_cast<std::size_t>(P + 1) * Lp, 0);
    for (int r = 0; r <= P; ++r)
      std::copy_n(bank.begin() + static_cast<std::ptrdiff_t>(r) * L, L,
                  bank_padded.begin() + static_cast<std::ptrdiff_t>(r) * Lp);

    // Step: 11025 / (in_rate * P) reduced, then scaled up while both terms are below 2^20.
    src_incr = kFpcalcSampleRate;
    dst_incr = static_cast<std::int64_t>(in_rate) * P;
    const std::int64_t gg = std::gcd(src_incr, dst_incr);
    src_incr /= gg;
    dst_incr /= gg;
    while (src_incr < (1 << 20) && dst_incr < (1 << 20)) {
      src_incr *= 2;
      dst_incr *= 2;
    }
    div = dst_incr / src_incr;
    mod = dst_incr % src_incr;
    index = -static_cast<std::int64_t>(P) * ((L - 1) / 2);
    frac = 0;
  }

  std::int16_t mix(const std::int16_t* v) const {
    if (channels == 1) return v[0];
    std::int64_t acc = 16384;
    for (int c = 0; c < channels; ++c)
      acc += static_cast<std::int64_t>(mix_weight[static_cast<std::size_t>(c)]) * v[c];
    return clip16(acc >> 15);
  }

  // Emits outputs while their window ends at or before `end` (extended position). The position
  // is kept as window start + phase so the loop needs no division.
  void emit(std::int64_t end, std::vector<std::int16_t>& out) {
    std::int64_t s = floor_div(index, P);
    std::int64_t ph = index - s * P;
    const std::int64_t step_s = div / P;
    const std::int64_t step_ph = div % P;
    const std::int64_t last = end - L;  // the last window start that fits
    const std::int16_t* c0 = channels > 0 ? buf[0].data() : nullptr;
    const std::int16_t* c1 = channels > 1 ? buf[1].data() : nullptr;
    std::int16_t vals[64];
    while (s <= last) {
      const std::size_t off = static_cast<std::size_t>(s - base);
      const std::int16_t* row = bank_padded.data() + ph * Lp;
      if (mod == 0 && channels <= 2) {
        const CommonLoop k{c0, c1, base, bank_padded.data(), Lp, P, step_s, step_ph};
#if defined(__x86_64__)
        if (have_avx2()) {
          common_loop_avx2(k, last, s, ph, out);
          break;
        }
#endif
        common_loop_generic(k, last, s, ph, out);
        break;
      } else {
        for (int c = 0; c < channels; ++c) {
          const std::int16_t* x = buf[static_cast<std::size_t>(c)].data() + off;
          std::int64_t a = 16384 + static_cast<std::int64_t>(dot16(x, row, Lp));
          if (mod != 0) {
            const std::int64_t b = 16384 + static_cast<std::int64_t>(dot16(x, row + Lp, Lp));
            a += (b - a) * frac / src_incr;
          }
          vals[c] = clip16(a >> 15);
        }
        out.push_back(mix(vals));
      }
      s += step_s;
      ph += step_ph;
      frac += mod;
      if (frac >= src_incr) {
        frac -= src_incr;
        ++ph;
      }
      if (ph >= P) {
        ph -= P;
        ++s;
      }
    }
    index = s * P + ph;
  }

  // Drops samples no later output can use, keeping the buffers O(L + block).
  void compact() {
    const std::int64_t drop = floor_div(index, P) - base;
    if (drop <= 4096) return;
    const auto d = static_cast<std::size_t>(drop);
    for (auto& b : buf)
      std::copy(b.begin() + static_cast<std::ptrdiff_t>(d),
                b.begin() + static_cast<std::ptrdiff_t>(size + kPad), b.begin());
    size -= d;
    base += drop;
  }

  void append(const std::int16_t* in, std::size_t frames) {
    const std::size_t need = size + frames + kPad;
    for (auto& b : buf)
      if (b.size() < need) b.resize(std::max(need, 2 * b.size()), 0);
    if (channels == 2) {
      deinterleave_stereo(in, frames, buf[0].data() + size, buf[1].data() + size);
    } else {
      const auto stride = static_cast<std::size_t>(channels);
      for (int c = 0; c < channels; ++c) {
        std::int16_t* dst = buf[static_cast<std::size_t>(c)].data() + size;
        const std::int16_t* src = in + c;
        for (std::size_t i = 0; i < frames; ++i)
          dst[i] = src[i * stride];
      }
    }
    for (auto& b : buf)
      std::fill_n(b.data() + size + frames, kPad, std::int16_t{0});
    size += frames;
  }

  // Left edge: x[-k] = x[k] (reflection without repeating x[0]) for k <= (L-1)/2.
  void start() {
    const std::int64_t half = (L - 1) / 2;
    const std::int64_t n = static_cast<std::int64_t>(head.size()) / channels;
    base = -half;
    buf.assign(static_cast<std::size_t>(channels), std::vector<std::int16_t>(kPad, 0));
    size = 0;
    std::vector<std::int16_t> refl(static_cast<std::size_t>(half * channels));
    for (std::int64_t k = half; k >= 1; --k) {
      const std::int64_t srcpos = std::min(k, n - 1);
      for (int c = 0; c < channels; ++c)
        refl[static_cast<std::size_t>((half - k) * channels + c)] =
            head[static_cast<std::size_t>(srcpos * channels + c)];
    }
    append(refl.data(), static_cast<std::size_t>(half));
    append(head.data(), static_cast<std::size_t>(n));
    head.clear();
    head.shrink_to_fit();
    started = true;
  }
};

FpcalcResampler::FpcalcResampler(int in_rate, int channels) : s_(std::make_unique<State>()) {
  YW_CHECK_INPUT(in_rate > 0 && in_rate <= 1'536'000, "sample rate {} Hz is out of range", in_rate);
  YW_CHECK_INPUT(channels > 0 && channels <= 64, "channel count {} is out of range", channels);
  s_->in_rate = in_rate;
  s_->channels = channels;
  s_->resample = in_rate != kFpcalcSampleRate;
  // swr normalises an integer-output mix matrix to a sum of 1: stereo is 16384 + 16384 (Q15).
  s_->mix_weight.assign(static_cast<std::size_t>(channels),
                        static_cast<std::int32_t>(std::lround(32768.0 / channels)));
  if (s_->resample) s_->build_filter();
}

FpcalcResampler::~FpcalcResampler() = default;
FpcalcResampler::FpcalcResampler(FpcalcResampler&&) noexcept = default;
FpcalcResampler& FpcalcResampler::operator=(FpcalcResampler&&) noexcept = default;

void FpcalcResampler::feed(const std::int16_t* in, std::size_t frames,
                           std::vector<std::int16_t>& out) {
  State& s = *s_;
  YW_CHECK(!s.flushed, "FpcalcResampler::feed after flush");
  if (frames == 0) return;
  const auto ch = static_cast<std::size_t>(s.channels);
  if (!s.resample) {
    out.reserve(out.size() + frames);
    for (std::size_t i = 0; i < frames; ++i)
      out.push_back(s.mix(in + i * ch));
    return;
  }
  s.total_in += static_cast<std::int64_t>(frames);
  if (!s.started) {
    s.head.insert(s.head.end(), in, in + frames * ch);
    // x[1..half] must exist before the reflection can be written.
    if (static_cast<std::int64_t>(s.head.size() / ch) <= (s.L - 1) / 2) return;
    s.start();
  } else {
    s.append(in, frames);
  }
  s.emit(s.avail_end(), out);
  s.compact();
}

void FpcalcResampler::flush(std::vector<std::int16_t>& out) {
  State& s = *s_;
  if (s.flushed) return;
  s.flushed = true;
  if (!s.resample || s.total_in == 0) return;
  if (!s.started) s.start();
  const std::int64_t n = s.total_in;
  s.emit(n, out);
  const std::int64_t next_start = floor_div(s.index, s.P);
  const std::int64_t buffered = std::max<std::int64_t>(n - next_start, 0);
  const std::int64_t refl = (std::min<std::int64_t>(buffered, s.L) + 1) / 2;
  // Right edge: x[n + j] = x[n - 1 - j], reflection with repetition.
  std::vector<std::int16_t> tail(static_cast<std::size_t>(refl * s.channels));
  for (std::int64_t j = 0; j < refl; ++j) {
    const std::int64_t src = std::max<std::int64_t>(n - 1 - j, s.base) - s.base;
    for (int c = 0; c < s.channels; ++c)
      tail[static_cast<std::size_t>(j * s.channels + c)] =
          s.buf[static_cast<std::size_t>(c)][static_cast<std::size_t>(src)];
  }
  s.append(tail.data(), static_cast<std::size_t>(refl));
  s.emit(n + refl, out);
}

int FpcalcResampler::phase_count() const {
  return s_->P;
}
int FpcalcResampler::filter_length() const {
  return s_->L;
}
const std::vector<std::int16_t>& FpcalcResampler::filter_bank() const {
  return s_->bank;
}

}  // namespace yw
