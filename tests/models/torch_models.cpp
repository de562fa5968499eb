// The test suite's only libtorch translation unit (build-and-separation.md §1: ~20 s per TU).
#include "torch_models.hpp"

#include <c10/core/CPUAllocator.h>
#include <torch/script.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace yw::test {
namespace {

torch::jit::Module base_module(const char* name, const TorchModelSpec& spec) {
  torch::jit::Module m(name);
  c10::List<std::string> sources;
  for (const auto& s : spec.sources)
    sources.push_back(s);
  m.register_attribute("sources", c10::ListType::ofStrings(), sources);
  m.register_attribute("samplerate", c10::IntType::get(), static_cast<int64_t>(spec.sample_rate));
  m.register_attribute("audio_channels", c10::IntType::get(), static_cast<int64_t>(spec.channels));
  m.register_attribute("segment_samples", c10::IntType::get(), spec.segment_samples);
  return m;
}

// Raises when the model was exported for one length and gets another.
constexpr const char* kLengthGuard = R"(
    assert self.segment_samples == 0 or mix.size(2) == self.segment_samples, "this export only accepts segment_samples samples"
)";

}  // namespace

void save_gain_model(const std::string& path, const TorchModelSpec& spec,
                     const std::vector<float>& gains) {
  auto m = base_module("GainSeparator", spec);
  m.register_buffer("gains", torch::tensor(gains));
  m.define(fmt::format(R"(
def forward(self, mix):{}
    return mix.unsqueeze(1) * self.gains.view(1, -1, 1, 1)
)",
                       kLengthGuard));
  m.save(path);
}

int64_t save_conv_model(const std::string& path, const TorchModelSpec& spec,
                        const std::vector<int>& widths, uint64_t seed) {
  torch::manual_seed(seed);
  auto m = base_module("ConvSeparator", spec);
  const int64_t outs = static_cast<int64_t>(spec.sources.size()) * spec.channels;
  int64_t params = 0;
  auto add = [&](const std::string& name, torch::Tensor w, int64_t fan_in) {
    w = w * (1.0 / std::sqrt(static_cast<double>(fan_in)));
    params += w.numel();
    m.register_parameter(name, w, false);
  };
  std::string body = "\n    length = mix.size(2)\n";
  const int64_t factor = static_cast<int64_t>(std::pow(4.0, static_cast<double>(widths.size())));
  body += fmt::format("    pad = ({0} - length % {0}) % {0}\n", factor);
  body += "    x = torch.constant_pad_nd(mix, [0, pad], 0.0)\n";
  int64_t in = spec.channels;
  for (size_t i = 0; i < widths.size(); ++i) {
    add(fmt::format("ew{}", i), torch::randn({widths[i], in, 8}), in * 8);
    add(fmt::format("eb{}", i), torch::zeros({widths[i]}), 1);
    body +=
        fmt::format("    x = torch.relu(torch.conv1d(x, self.ew{0}, self.eb{0}, [4], [2]))\n", i);
    in = widths[i];
  }
  for (size_t j = widths.size(); j-- > 0;) {
    const int64_t out = j == 0 ? outs : widths[j - 1];
    add(fmt::format("dw{}", j), torch::randn({in, out, 8}), in * 2);
    add(fmt::format("db{}", j), torch::zeros({out}), 1);
    body += fmt::format("    x = torch.conv_transpose1d(x, self.dw{0}, self.db{0}, [4], [2])\n", j);
    if (j != 0) body += "    x = torch.relu(x)\n";
    in = out;
  }
  body +=
      fmt::format("    x = x[:, :, :length]\n    return x.reshape(mix.size(0), {}, {}, length)\n",
                  spec.sources.size(), spec.channels);
  m.define(fmt::format("def forward(self, mix):{}{}", kLengthGuard, body));
  m.save(path);
  return params;
}

void save_broken_model(const std::string& path, BrokenKind kind) {
  TorchModelSpec spec;
  torch::jit::Module m("Broken");
  c10::List<std::string> sources;
  for (const auto& s : spec.sources)
    sources.push_back(s);
  if (kind == BrokenKind::sources_not_strings) {
    m.register_attribute("sources", c10::IntType::get(), int64_t{4});
  } else {
    m.register_attribute("sources", c10::ListType::ofStrings(), sources);
  }
  if (kind != BrokenKind::missing_samplerate)
    m.register_attribute("samplerate", c10::IntType::get(), int64_t{44100});
  m.register_attribute("audio_channels", c10::IntType::get(), int64_t{2});
  if (kind == BrokenKind::declared_wrong_shape)
    m.register_attribute("segment_samples", c10::IntType::get(), int64_t{4410});
  switch (kind) {
    case BrokenKind::wrong_rank:
      m.define("def forward(self, mix):\n    return mix * 2.0\n");
      break;
    case BrokenKind::wrong_source_count:
    case BrokenKind::declared_wrong_shape:
      m.define("def forward(self, mix):\n    return mix.unsqueeze(1).repeat(1, 3, 1, 1)\n");
      break;
    case BrokenKind::device_fault:
      m.define(
          "def forward(self, mix):\n"
          "    assert mix.size(2) == 11025, \"CUDA error: an illegal memory access was "
          "encountered\"\n"
          "    return mix.unsqueeze(1).repeat(1, 4, 1, 1)\n");
      break;
    default:
      m.define("def forward(self, mix):\n    return mix.unsqueeze(1).repeat(1, 4, 1, 1)\n");
  }
  m.save(path);
}

std::vector<float> torch_forward_once(const std::string& path, const std::vector<float>& mix,
                                      int channels, int64_t length) {
  torch::InferenceMode guard;
  auto m = torch::jit::load(path);
  m.eval();
  auto x = torch::from_blob(const_cast<float*>(mix.data()), {1, channels, length}).clone();
  auto y = m.forward({x}).toTensor().contiguous();
  return std::vector<float>(y.data_ptr<float>(), y.data_ptr<float>() + y.numel());
}

namespace {

torch::Tensor mix_tensor(const std::vector<float>& mix, int channels, int64_t length) {
  return torch::from_blob(const_cast<float*>(mix.data()), {channels, length}).clone();
}

}  // namespace

std::pair<float, float> demucs_mix_stats(const std::vector<float>& mix, int channels,
                                         int64_t length) {
  torch::InferenceMode guard;
  const auto ref = mix_tensor(mix, channels, length).mean(0);
  return {ref.mean().item<float>(), (ref.std() + 1e-8).item<float>()};
}

std::vector<float> demucs_reference(const std::string& path, const std::vector<float>& mix,
                                    int channels, int64_t length, int64_t segment, int64_t window,
                                    double overlap) {
  torch::InferenceMode guard;
  auto model = torch::jit::load(path);
  model.eval();
  auto wav = mix_tensor(mix, channels, length);
  const auto ref = wav.mean(0);
  wav = wav - ref.mean();
  wav = wav / (ref.std() + 1e-8);
  const auto x = wav.unsqueeze(0);

  const auto stride = static_cast<int64_t>((1.0 - overlap) * static_cast<double>(segment));
  auto weight =
      torch::cat({torch::arange(1, segment / 2 + 1), torch::arange(segment - segment / 2, 0, -1)});
  weight = weight / weight.max();
  torch::Tensor out, sum_weight = torch::zeros({length});
  for (int64_t offset = 0; offset < length; offset += stride) {
    const int64_t chunk = std::min(segment, length - offset);
    const int64_t delta = window - chunk;
    const int64_t start = offset - delta / 2, end = start + window;
    const int64_t cs = std::max<int64_t>(0, start), ce = std::min(length, end);
    const auto padded = torch::constant_pad_nd(x.slice(2, cs, ce), {cs - start, end - ce}, 0.0);
    auto y = model.forward({padded}).toTensor();
    y = y.slice(3, delta / 2, delta / 2 + chunk);
    if (!out.defined()) out = torch::zeros({1, y.size(1), channels, length});
    const auto w = weight.slice(0, 0, chunk);
    out.slice(3, offset, offset + chunk) += w * y;
    sum_weight.slice(0, offset, offset + chunk) += w;
  }
  out /= sum_weight;
  out *= ref.std() + 1e-8;
  out += ref.mean();
  out = out.squeeze(0).contiguous();
  return std::vector<float>(out.data_ptr<float>(), out.data_ptr<float>() + out.numel());
}

CpuAllocatorReuse probe_cpu_allocator(int64_t bytes) {
  CpuAllocatorReuse r;
  r.default_allocator = c10::GetCPUAllocator() == c10::GetDefaultCPUAllocator();
  const int64_t n = bytes / static_cast<int64_t>(sizeof(float));
  const void* first = nullptr;
  {
    const auto t = torch::full({n}, 7.0f);
    first = t.data_ptr();
  }
  const auto u = torch::empty({n});
  r.same_block = u.data_ptr() == first;
  r.pattern_kept = u[0].item<float>() == 7.0f && u[n - 1].item<float>() == 7.0f;
  return r;
}

}  // namespace yw::test
