#pragma once
// The seam between yw_models and libyw_torch_runner.so (opened with dlopen). Both sides are built
// from this tree with the same compiler, so the C++ SegmentModel object crosses it; only the
// entry point is extern "C" so that dlsym finds it by a plain name.
#include <cstddef>
#include <memory>
#include <string>

#include "yw/models/apply.hpp"

namespace yw::models {

struct TorchModelRequest {
  const char* path = nullptr;
  int device_kind = 0;  // 0 cpu, 1 cuda
  int device_index = 0;
  int threads = 1;  // at::set_num_threads
};

// Why opening failed: the file (missing, corrupt, contract broken) or the device.
enum class TorchOpenError : int { none = 0, model = 1, device = 2 };

// Returns a new model (the caller owns it) or nullptr with `error` filled (NUL-terminated).
using TorchOpenFn = SegmentModel* (*)(const TorchModelRequest* request, char* error,
                                      std::size_t error_size, int* error_kind);
inline constexpr const char* kTorchOpenSymbol = "yw_torch_open_model_v1";

// Loads the runner on first use and opens `path` on `device` (torch_loader.cpp). Throws
// yw::ConfigError with the runner's message when the model cannot be used.
std::unique_ptr<SegmentModel> load_torch_model(const std::string& path, const Device& device,
                                               int threads);

}  // namespace yw::models
