// Chromaprint's compressed fingerprint format and fpcalc's per-file driver.
// ref: docs/chromaprint.md §1.2 (fpcalc front end), §1.14 (format). The tables are in
// chromaprint_tables.cpp, part of yw_kernels_core.
#include <algorithm>
#include <cmath>
#include <string_view>

#include "yw/common/error.hpp"
#include "yw/kernels/fingerprint.hpp"
#include "yw/kernels/fpcalc_resample.hpp"

namespace yw {
namespace {

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// LSB-first bit writer: value k of width n occupies stream bits [k*n, (k+1)*n).
class BitWriter {
 public:
  void put(std::uint32_t value, int bits) {
    acc_ |= static_cast<std::uint64_t>(value) << nbits_;
    nbits_ += bits;
    while (nbits_ >= 8) {
      bytes_.push_back(static_cast<char>(acc_ & 0xFF));
      acc_ >>= 8;
      nbits_ -= 8;
    }
  }
  std::string finish() {
    if (nbits_ > 0) bytes_.push_back(static_cast<char>(acc_ & 0xFF));
    acc_ = 0;
    nbits_ = 0;
    return std::move(bytes_);
  }

 private:
  std::string bytes_;
  std::uint64_t acc_ = 0;
  int nbits_ = 0;
};

std::string base64url(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (b(i) << 16) | (b(i + 1) << 8) | b(i + 2);
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += kBase64[(v >> 6) & 63];
    out += kBase64[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t v = b(i) << 16;
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
  } else if (rest == 2) {
    const std::uint32_t v = (b(i) << 16) | (b(i + 1) << 8);
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += kBase64[(v >> 6) & 63];
  }
  return out;
}

std::string unbase64url(std::string_view text) {
  std::string out;
  std::uint32_t acc = 0;
  int nbits = 0;
  for (const char ch : text) {
    const char* p = std::find(kBase64, kBase64 + 64, ch);
    if (p == kBase64 + 64)
      YW_THROW_INPUT("fingerprint: '{}' is not a URL-safe base64 character", ch);
    acc = (acc << 6) | static_cast<std::uint32_t>(p - kBase64);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out.push_back(static_cast<char>((acc >> nbits) & 0xFF));
    }
  }
  return out;
}

}  // namespace

std::string compress_fingerprint(std::span<const std::uint32_t> items, int algorithm) {
  std::string header(4, '\0');
  header[0] = static_cast<char>((algorithm - 1) & 0xFF);
  const std::size_t n = items.size();
  header[1] = static_cast<char>((n >> 16) & 0xFF);
  header[2] = static_cast<char>((n >> 8) & 0xFF);
  header[3] = static_cast<char>(n & 0xFF);
  BitWriter normal;
  BitWriter exceptional;
  std::uint32_t prev = 0;
  for (const std::uint32_t item : items) {
    std::uint32_t d = item ^ prev;
    prev = item;
    int last = 0;
    int pos = 1;
    while (d != 0) {
      if (d & 1u) {
        const int gap = pos - last;
        if (gap >= 7) {
          normal.put(7, 3);
          exceptional.put(static_cast<std::uint32_t>(gap - 7), 5);
        } else {
          normal.put(static_cast<std::uint32_t>(gap), 3);
        }
        last = pos;
      }
      d >>= 1;
      ++pos;
    }
    normal.put(0, 3);
  }
  return base64url(header + normal.finish() + exceptional.finish());
}

std::vector<std::uint32_t> decompress_fingerprint(std::string_view text, int* algorithm) {
  const std::string bytes = unbase64url(text);
  YW_CHECK_INPUT(bytes.size() >= 4, "fingerprint: shorter than its 4-byte header");
  const auto u = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
  if (algorithm != nullptr) *algorithm = u(0) + 1;
  const std::size_t count = (static_cast<std::size_t>(u(1)) << 16) | (u(2) << 8) | u(3);
  // Normal stream: 3-bit values until `count` zeros.
  std::vector<int> values;
  std::size_t bit = 32;
  const std::size_t total_bits = bytes.size() * 8;
  const auto read_bits = [&](std::size_t at, int width) {
    std::uint32_t v = 0;
    for (int k = 0; k < width; ++k) {
      const std::size_t b = at + static_cast<std::size_t>(k);
      if ((u(b / 8) >> (b % 8)) & 1u) v |= 1u << k;
    }
    return v;
  };
  std::size_t zeros = 0;
  while (zeros < count) {
    YW_CHECK_INPUT(bit + 3 <= total_bits, "fingerprint: truncated (normal stream)");
    const int v = static_cast<int>(read_bits(bit, 3));
    bit += 3;
    values.push_back(v);
    if (v == 0) ++zeros;
  }
  std::size_t ebit = (bit + 7) / 8 * 8;
  for (int& v : values) {
    if (v == 7) {
      YW_CHECK_INPUT(ebit + 5 <= total_bits, "fingerprint: truncated (exception stream)");
      v += static_cast<int>(read_bits(ebit, 5));
      ebit += 5;
    }
  }
  std::vector<std::uint32_t> items;
  items.reserve(count);
  std::uint32_t d = 0;
  int last = 0;
  std::uint32_t prev = 0;
  for (const int v : values) {
    if (v == 0) {
      prev ^= d;
      items.push_back(prev);
      d = 0;
      last = 0;
      continue;
    }
    last += v;
    YW_CHECK_INPUT(last <= 32, "fingerprint: bit position {} out of range", last);
    d |= 1u << (last - 1);
  }
  return items;
}

namespace {

// Decodes `path` and converts it as fpcalc does, handing each converted block to `sink` until
// `length_seconds` of converted audio (fpcalc counts its limit in 11025 Hz samples) or the end.
template <typename Sink>
AudioInfo convert_file(const std::filesystem::path& path, double length_seconds, Sink&& sink) {
  auto reader = AudioReader::open(path);
  const AudioInfo info = reader->info();
  const auto channels = static_cast<std::size_t>(info.channels);
  // Lengths beyond ~30 000 years (or infinite) mean the whole file, like 0.
  const bool limited = length_seconds > 0 && length_seconds < 1e12;
  const std::int64_t limit =
      limited ? static_cast<std::int64_t>(length_seconds * kFpcalcSampleRate) : -1;
  FpcalcResampler resampler(info.sample_rate, info.channels);
  constexpr std::size_t kBlockFrames = 16384;
  std::vector<std::int16_t> block(kBlockFrames * channels);
  std::vector<std::int16_t> mono;
  std::int64_t used = 0;
  const auto push = [&] {
    if (limit >= 0 && used + static_cast<std::int64_t>(mono.size()) > limit)
      mono.resize(static_cast<std::size_t>(limit - used));
    sink(std::span<const std::int16_t>(mono));
    used += static_cast<std::int64_t>(mono.size());
    mono.clear();
  };
  while (limit < 0 || used < limit) {
    const std::size_t got = reader->read_int16(block.data(), kBlockFrames);
    if (got == 0) {
      resampler.flush(mono);
      push();
      break;
    }
    resampler.feed(block.data(), got, mono);
    push();
  }
  return info;
}

}  // namespace

FileFingerprint fingerprint_file(const std::filesystem::path& path, double length_seconds) {
  FileFingerprint out;
  FingerprinterCpu core;
  out.info = convert_file(path, length_seconds,
                          [&](std::span<const std::int16_t> block) { core.feed(block); });
  out.duration_seconds = out.info.duration_seconds;
  out.items = core.items();
  if (!out.items.empty()) out.fingerprint = compress_fingerprint(out.items);
  return out;
}

FpcalcSignal fpcalc_signal(const std::filesystem::path& path, double length_seconds) {
  FpcalcSignal out;
  out.info = convert_file(path, length_seconds, [&](std::span<const std::int16_t> block) {
    out.samples.insert(out.samples.end(), block.begin(), block.end());
  });
  out.duration_seconds = out.info.duration_seconds;
  return out;
}

}  // namespace yw
