#pragma once
// Bags of models (bag.cpp). Internal to yw_models; the public entry is open_separator, which
// takes a bag manifest wherever it takes a model file.
#include <memory>
#include <string>
#include <vector>

#include "yw/models/apply.hpp"

namespace yw::models {

// Combines members that agree on sources, rate and channels with per-source weights
// (weights[m][s] >= 0, every source with some weight; empty = all 1, an average). Throws
// yw::ConfigError naming `name` when they do not.
std::unique_ptr<SegmentModel> make_bag_model(std::vector<std::unique_ptr<SegmentModel>> members,
                                             std::vector<std::vector<float>> weights,
                                             const std::string& name);

// A bag manifest is a .json file: {"models": ["a.pt", ...] (relative to the manifest),
// "weights": [[w per source], ...] (optional)}.
bool is_bag_manifest(const std::string& path);
std::unique_ptr<SegmentModel> load_bag(const std::string& path, const Device& device, int threads);

}  // namespace yw::models
