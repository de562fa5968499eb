// Finds and opens libyw_torch_runner.so on first use (design.md §3, build-and-separation.md §1:
// libtorch costs ~290 shared libraries, 0.8 s and 160 MB at start, which only model users pay).
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "torch_runner_abi.hpp"
#include "yw/common/error.hpp"
#include "yw/common/log.hpp"

namespace yw::models {
namespace {

constexpr const char* kRunnerFile = "libyw_torch_runner.so";
std::atomic<bool> g_loaded{false};

std::filesystem::path executable_dir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : exe.parent_path();
}

// Search order: $YW_TORCH_RUNNER (a file), next to the executable, ../lib/yesod-worker, then
// the path this build put it at.
std::vector<std::filesystem::path> candidates() {
  std::vector<std::filesystem::path> out;
  if (const char* env = std::getenv("YW_TORCH_RUNNER"); env && *env) out.emplace_back(env);
  if (const auto dir = executable_dir(); !dir.empty()) {
    out.push_back(dir / kRunnerFile);
    out.push_back(dir / ".." / "lib" / "yesod-worker" / kRunnerFile);
  }
  if (const std::string built = YW_TORCH_RUNNER_PATH; !built.empty()) out.emplace_back(built);
  return out;
}

TorchOpenFn open_runner() {
  static std::mutex m;
  static TorchOpenFn fn = nullptr;
  std::lock_guard lock(m);
  if (fn) return fn;
  if (std::string(YW_TORCH_RUNNER_PATH).empty() && !std::getenv("YW_TORCH_RUNNER"))
    throw ConfigError("TorchScript models need libtorch, and this build has none (YW_TORCH=OFF)");
  std::string tried;
  for (const auto& path : candidates()) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      tried += fmt::format(" {} (absent)", path.string());
      continue;
    }
    // RTLD_LOCAL keeps torch's symbols out of the global namespace; the handle is never closed
    // (libtorch does not support unloading).
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      tried += fmt::format(" {} ({})", path.string(), ::dlerror());
      continue;
    }
    fn = reinterpret_cast<TorchOpenFn>(::dlsym(handle, kTorchOpenSymbol));
    if (!fn) throw ConfigError(fmt::format("{}: no symbol {}", path.string(), kTorchOpenSymbol));
    g_loaded = true;
    log_info("models", "libtorch runner loaded from {}", path.string());
    return fn;
  }
  throw ConfigError(
      fmt::format("cannot load the TorchScript runner {}; tried:{}", kRunnerFile, tried));
}

}  // namespace

bool torch_runtime_loaded() {
  return g_loaded.load();
}

std::unique_ptr<SegmentModel> load_torch_model(const std::string& path, const Device& device,
                                               int threads) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw ConfigError(fmt::format("model {}: no such file", path));
  const TorchOpenFn open = open_runner();
  TorchModelRequest req;
  req.path = path.c_str();
  req.device_kind = device.is_cuda() ? 1 : 0;
  req.device_index = device.index;
  req.threads =
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::array<char, 2048> error{};
  int kind = 0;
  SegmentModel* model = open(&req, error.data(), error.size(), &kind);
  if (!model) throw ConfigError(error.data());
  return std::unique_ptr<SegmentModel>(model);
}

}  // namespace yw::models
