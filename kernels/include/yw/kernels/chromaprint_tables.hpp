#pragma once
// Constants and the post-FFT stages of Chromaprint TEST2 (docs/chromaprint.md §1.6-1.12), shared
// by the CPU twin and the host side of the CUDA twin so both agree bit for bit.
// C++17-clean: also included by kernels/cuda/*.cu.
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

namespace yw::chromaprint_detail {

inline constexpr int kChromaBinLo = 10;    // first FFT bin used (28 Hz)
inline constexpr int kChromaBinHi = 1308;  // one past the last (3520 Hz)
// Band (0 = A ... 11 = G#) of FFT bin `bin` (kChromaBinLo <= bin < kChromaBinHi).
int chroma_band(int bin);

// Filter(type, y, height, width) + Quantizer(t0, t1, t2), in bit order (classifier 0 ->
// bits 31..30).
struct Classifier {
  int type;
  int y;
  int h;
  int w;
  double t0;
  double t1;
  double t2;
};

inline constexpr std::array<Classifier, 16> kClassifiers{{
    {0, 4, 3, 15, 1.98215, 2.35817, 2.63523},
    {4, 4, 6, 15, -1.03809, -0.651211, -0.282167},
    {1, 0, 4, 16, -0.298702, 0.119262, 0.558497},
    {3, 8, 2, 12, -0.105439, 0.0153946, 0.135898},
    {3, 4, 4, 8, -0.142891, 0.0258736, 0.200632},
    {4, 0, 3, 5, -0.826319, -0.590612, -0.368214},
    {1, 2, 2, 9, -0.557409, -0.233035, 0.0534525},
    {2, 7, 3, 4, -0.0646826, 0.00620476, 0.0784847},
    {2, 6, 2, 16, -0.192387, -0.029699, 0.215855},
    {2, 1, 3, 2, -0.0397818, -0.00568076, 0.0292026},
    {5, 10, 1, 15, -0.53823, -0.369934, -0.190235},
    {3, 6, 2, 10, -0.124877, 0.0296483, 0.139239},
    {2, 1, 1, 14, -0.101475, 0.0225617, 0.231971},
    {3, 5, 6, 4, -0.0799915, -0.00729616, 0.063262},
    {1, 9, 2, 12, -0.272556, 0.019424, 0.302559},
    {3, 4, 2, 14, -0.164292, -0.0321188, 0.0846339},
}};

inline constexpr std::array<double, 5> kChromaFilter{0.25, 0.75, 1.0, 0.75, 0.25};
inline constexpr double kNormaliserFloor = 0.01;

// Host tables: the float Hamming window (scaled by 1/32767, as Debian's av_rdft path computes it)
// and the band of every FFT bin (-1 outside kChromaBinLo..kChromaBinHi).
struct Tables {
  std::vector<float> window;  // 4096
  std::vector<int> band;      // 2049
};
const Tables& tables();

using ChromaRing = std::array<std::array<double, 12>, 5>;

// The chroma filter over the last five chroma vectors (`frames` counted so far, >= 5; the newest
// is ring[(frames - 1) % 5]) followed by the L2 normaliser with its 0.01 floor.
inline void filter_and_normalise(const ChromaRing& ring, std::int64_t frames,
                                 std::array<double, 12>& out) {
  for (int b = 0; b < 12; ++b) {
    double r = 0.0;
    for (int j = 0; j < 5; ++j)
      r += kChromaFilter[static_cast<std::size_t>(j)] *
           ring[static_cast<std::size_t>((frames - 5 + j) % 5)][static_cast<std::size_t>(b)];
    out[static_cast<std::size_t>(b)] = r;
  }
  double sum = 0.0;
  for (int b = 0; b < 12; ++b)
    sum += out[static_cast<std::size_t>(b)] * out[static_cast<std::size_t>(b)];
  const double norm = std::sqrt(sum);
  if (norm < kNormaliserFloor) {
    out.fill(0.0);
  } else {
    for (int b = 0; b < 12; ++b)
      out[static_cast<std::size_t>(b)] /= norm;
  }
}

// Sum of rows r1..r2-1 and bands c1..c2-1 of the cumulative image `at(row, band)`, with the
// terms' order and omissions of Chromaprint's integral image (§1.9).
template <typename ImageAt>
double area(const ImageAt& at, std::int64_t r1, int c1, std::int64_t r2, int c2) {
  if (r1 == r2 || c1 == c2) return 0.0;
  double a = at(r2 - 1, c2 - 1);
  if (r1 > 0) a = a - at(r1 - 1, c2 - 1);
  if (c1 > 0) a = a - at(r2 - 1, c1 - 1);
  if (r1 > 0 && c1 > 0) a = a + at(r1 - 1, c1 - 1);
  return a;
}

// Filter value of classifier `c` at image row x (§1.10).
template <typename ImageAt>
double filter_value(const ImageAt& at, const Classifier& c, std::int64_t x) {
  const int y = c.y;
  const int w = c.w;
  const int h = c.h;
  double a = 0.0;
  double b = 0.0;
  switch (c.type) {
    case 0:
      a = area(at, x, y, x + w, y + h);
      break;
    case 1: {
      const int h2 = h / 2;
      a = area(at, x, y + h2, x + w, y + h);
      b = area(at, x, y, x + w, y + h2);
      break;
    }
    case 2: {
      const int w2 = w / 2;
      a = area(at, x + w2, y, x + w, y + h);
      b = area(at, x, y, x + w2, y + h);
      break;
    }
    case 3: {
      const int w2 = w / 2;
      const int h2 = h / 2;
      a = area(at, x, y + h2, x + w2, y + h) + area(at, x + w2, y, x + w, y + h2);
      b = area(at, x, y, x + w2, y + h2) + area(at, x + w2, y + h2, x + w, y + h);
      break;
    }
    case 4: {
      const int h3 = h / 3;
      a = area(at, x, y + h3, x + w, y + 2 * h3);
      b = area(at, x, y, x + w, y + h3) + area(at, x, y + 2 * h3, x + w, y + h);
      break;
    }
    default: {
      const int w3 = w / 3;
      a = area(at, x + w3, y, x + 2 * w3, y + h);
      b = area(at, x, y, x + w3, y + h) + area(at, x + 2 * w3, y, x + w, y + h);
      break;
    }
  }
  return std::log((1.0 + a) / (1.0 + b));
}

inline std::uint32_t quantise_gray(double v, const Classifier& c) {
  const int q = v < c.t1 ? (v < c.t0 ? 0 : 1) : (v < c.t2 ? 2 : 3);
  constexpr std::uint32_t kGray[4] = {0, 1, 3, 2};
  return kGray[q];
}

// The 32-bit item of the 16 rows starting at image row x.
template <typename ImageAt>
std::uint32_t classify(const ImageAt& at, std::int64_t x) {
  std::uint32_t item = 0;
  for (const Classifier& c : kClassifiers)
    item = (item << 2) | quantise_gray(filter_value(at, c, x), c);
  return item;
}

}  // namespace yw::chromaprint_detail
