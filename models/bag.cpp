// Bags of models (Demucs' BagOfModels, e.g. htdemucs_ft: four fine-tuned networks, each source
// taken from its own one through one-hot weights) as one SegmentModel, so a bag runs through the
// same batched separator as a single network: every member gets the same batch of segments and
// their outputs are combined per source with the bag's weights.
#include "bag.hpp"

#include <filesystem>
#include <fstream>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "torch_runner_abi.hpp"
#include "yw/common/error.hpp"

namespace yw::models {
namespace {

class BagModel final : public SegmentModel {
 public:
  BagModel(std::vector<std::unique_ptr<SegmentModel>> members,
           std::vector<std::vector<float>> weights, const std::string& where)
      : members_(std::move(members)), weights_(std::move(weights)) {
    YW_CHECK(!members_.empty(), "bag {}: no models", where);
    info_ = members_[0]->info();
    for (size_t m = 1; m < members_.size(); ++m) {
      const ModelInfo& mi = members_[m]->info();
      if (mi.sources != info_.sources || mi.sample_rate != info_.sample_rate ||
          mi.channels != info_.channels) {
        throw ConfigError(fmt::format(
            "bag {}: model {} has sources [{}] at {} Hz, {} channels; model 1 has [{}] at {} Hz, "
            "{} channels (a bag's models must agree)",
            where, m + 1, fmt::join(mi.sources, ", "), mi.sample_rate, mi.channels,
            fmt::join(info_.sources, ", "), info_.sample_rate, info_.channels));
      }
      // Any-length members take the fixed length of a traced one; two traced lengths cannot
      // share a batch.
      if (mi.segment_samples > 0 && info_.segment_samples > 0 &&
          mi.segment_samples != info_.segment_samples) {
        throw ConfigError(fmt::format("bag {}: model {} accepts only {} samples, another only {}",
                                      where, m + 1, mi.segment_samples, info_.segment_samples));
      }
      if (mi.segment_samples > 0) info_.segment_samples = mi.segment_samples;
    }
    const size_t sources = info_.sources.size();
    if (weights_.empty()) weights_.assign(members_.size(), std::vector<float>(sources, 1.0f));
    if (weights_.size() != members_.size())
      throw ConfigError(fmt::format("bag {}: {} weight rows for {} models", where, weights_.size(),
                                    members_.size()));
    totals_.assign(sources, 0.0f);
    for (size_t m = 0; m < weights_.size(); ++m) {
      if (weights_[m].size() != sources)
        throw ConfigError(fmt::format("bag {}: weight row {} has {} values for {} sources", where,
                                      m + 1, weights_[m].size(), sources));
      for (size_t s = 0; s < sources; ++s) {
        if (!(weights_[m][s] >= 0.0f))
          throw ConfigError(fmt::format("bag {}: weights must be >= 0", where));
        totals_[s] += weights_[m][s];
      }
    }
    for (size_t s = 0; s < sources; ++s)
      if (!(totals_[s] > 0.0f))
        throw ConfigError(fmt::format("bag {}: source '{}' has no model with a weight above 0",
                                      where, info_.sources[s]));
  }

  const ModelInfo& info() const override { return info_; }

  MixStats mix_stats(std::span<const float* const> channels, int64_t length) const override {
    return members_[0]->mix_stats(channels, length);
  }

  // apply_model's rule for a bag, per segment: out[:, s] = sum_m w[m][s] * model_m[:, s] /
  // sum_m w[m][s]. With one-hot weights each source is its member's output exactly.
  void forward(const float* in, int batch, int64_t length, float* out) override {
    const auto sources = static_cast<int64_t>(info_.sources.size());
    const int64_t per_source = info_.channels * length;
    const auto size = static_cast<size_t>(batch * sources * per_source);
    scratch_.resize(size);
    for (size_t m = 0; m < members_.size(); ++m) {
      members_[m]->forward(in, batch, length, scratch_.data());
      for (int64_t b = 0; b < batch; ++b) {
        for (int64_t s = 0; s < sources; ++s) {
          const float w = weights_[m][static_cast<size_t>(s)];
          const size_t base = static_cast<size_t>((b * sources + s) * per_source);
          float* o = out + base;
          const float* y = scratch_.data() + base;
          for (int64_t i = 0; i < per_source; ++i)
            o[i] = (m == 0 ? 0.0f : o[i]) + y[i] * w;
        }
      }
    }
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t s = 0; s < sources; ++s) {
        const float t = totals_[static_cast<size_t>(s)];
        float* o = out + (b * sources + s) * per_source;
        for (int64_t i = 0; i < per_source; ++i)
          o[i] /= t;
      }
  }

 private:
  std::vector<std::unique_ptr<SegmentModel>> members_;
  std::vector<std::vector<float>> weights_;
  std::vector<float> totals_;
  ModelInfo info_;
  std::vector<float> scratch_;
};

}  // namespace

std::unique_ptr<SegmentModel> make_bag_model(std::vector<std::unique_ptr<SegmentModel>> members,
                                             std::vector<std::vector<float>> weights,
                                             const std::string& name) {
  return std::make_unique<BagModel>(std::move(members), std::move(weights), name);
}

bool is_bag_manifest(const std::string& path) {
  return std::filesystem::path(path).extension() == ".json";
}

std::unique_ptr<SegmentModel> load_bag(const std::string& path, const Device& device, int threads) {
  std::ifstream f(path);
  if (!f) throw ConfigError(fmt::format("bag {}: no such file", path));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(fmt::format("bag {}: not JSON: {}", path, e.what()));
  }
  if (!j.is_object() || !j.contains("models") || !j["models"].is_array() || j["models"].empty())
    throw ConfigError(fmt::format(
        "bag {}: expected {{\"models\": [\"a.pt\", ...], \"weights\": [[...], ...]}}", path));
  const auto dir = std::filesystem::path(path).parent_path();
  std::vector<std::unique_ptr<SegmentModel>> members;
  for (const auto& m : j["models"]) {
    if (!m.is_string()) throw ConfigError(fmt::format("bag {}: models must be file names", path));
    const std::filesystem::path p = m.get<std::string>();
    members.push_back(load_torch_model((p.is_absolute() ? p : dir / p).string(), device, threads));
  }
  std::vector<std::vector<float>> weights;
  if (j.contains("weights")) {
    try {
      weights = j["weights"].get<std::vector<std::vector<float>>>();
    } catch (const nlohmann::json::exception&) {
      throw ConfigError(fmt::format("bag {}: weights must be one list of numbers per model", path));
    }
  }
  return make_bag_model(std::move(members), std::move(weights), path);
}

}  // namespace yw::models
