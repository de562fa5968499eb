// libyw_torch_runner.so: the only yw translation unit that includes libtorch. It loads a
// TorchScript separator, checks it against design.md §3 and runs batches of segments.
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/script.h>
// Only a CUDA build of libtorch ships c10_cuda (models/CMakeLists.txt defines this when it finds
// it); Debian's CPU libtorch has the headers but not the library.
#if defined(YW_TORCH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <c10/core/CPUAllocator.h>
#include <malloc.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>

#include <fmt/format.h>

#include "../torch_runner_abi.hpp"
#include "yw/common/error.hpp"

namespace yw::models {
namespace {

// libtorch messages carry a C++ backtrace after the first line; users need the first line.
std::string first_line(const std::string& s) {
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

struct OpenFailure {
  TorchOpenError kind;
  std::string message;
};

// libtorch's CPU allocator in the separator's process (CPU models only): blocks of 64 KiB or
// more are mapped whole, so they go back to the system when dropped instead of into a heap
// where freed pages stay resident, and once freed they are kept for the next request of the
// same size. A CPU forward allocates and frees the same activations window after window
// (htdemucs: ~0.5 GB), so from the second window on it reuses mapped pages instead of faulting
// fresh zero pages in. Measured with htdemucs, 2 threads, OpenBLAS, on a 20 s clip: system time
// 40 -> 19 s, wall 43 -> 31 s (Demucs' CLI: 33 s), same peak RSS. Bound: mapped bytes, live plus
// cached, stay within the largest live total seen so far; a miss first unmaps cached blocks to
// keep to it, so a change of shapes costs faults, never growth. Smaller blocks come from malloc,
// 64-byte aligned as libtorch's default allocator aligns them.
class BlockCache final : public c10::Allocator {
 public:
  static BlockCache& instance() {
    static BlockCache* cache = new BlockCache;  // never destroyed: tensors may outlive statics
    return *cache;
  }

  // libtorch 1.x declares allocate() const, 2.x non-const with copy_data(); both are provided
  // so that the runner builds against either (the device machine's pip torch is 2.x).
  c10::DataPtr allocate(size_t n) const { return instance().take(n); }
  c10::DataPtr allocate(size_t n) { return take(n); }
  void copy_data(void* dest, const void* src, size_t count) const { std::memcpy(dest, src, count); }
  c10::DeleterFnPtr raw_deleter() const override { return &drop; }

 private:
  static constexpr size_t kBig = size_t{1} << 16;
  static constexpr size_t kPage = 4096;

  c10::DataPtr take(size_t n) {
    const c10::Device cpu(c10::DeviceType::CPU);
    if (n < kBig) {
      void* p = nullptr;
      TORCH_CHECK(posix_memalign(&p, 64, std::max<size_t>(n, 1)) == 0,
                  "not enough memory: tried to allocate ", n, " bytes");
      return {p, p, &free_small, cpu};  // no lock on the hot path of small tensors
    }
    const size_t size = (n + kPage - 1) / kPage * kPage;
    std::unique_lock lock(mutex_);
    void* p = nullptr;
    if (auto it = free_.find(size); it != free_.end()) {
      p = it->second;
      free_.erase(it);
      cached_ -= size;
    } else {
      // Keep mapped bytes within the largest live total so far (or this request's new one).
      const size_t bound = std::max(peak_live_, live_ + size);
      while (cached_ > 0 && live_ + cached_ + size > bound) {
        auto victim = std::prev(free_.end());  // the largest cached block
        munmap(victim->second, victim->first);
        cached_ -= victim->first;
        free_.erase(victim);
      }
      lock.unlock();
      p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      TORCH_CHECK(p != MAP_FAILED, "not enough memory: tried to map ", size, " bytes");
      lock.lock();
    }
    sizes_.emplace(p, size);
    live_ += size;
    peak_live_ = std::max(peak_live_, live_);
    return {p, p, &drop, cpu};
  }

  static void free_small(void* p) { std::free(p); }

  // raw_deleter()'s one deleter: any block of this allocator, mapped or not.
  static void drop(void* p) {
    if (p == nullptr) return;
    BlockCache& c = instance();
    std::unique_lock lock(c.mutex_);
    const auto it = c.sizes_.find(p);
    if (it == c.sizes_.end()) {
      lock.unlock();
      std::free(p);
      return;
    }
    const size_t size = it->second;
    c.sizes_.erase(it);
    c.live_ -= size;
    c.free_.emplace(size, p);
    c.cached_ += size;
  }

  std::mutex mutex_;
  std::unordered_map<void*, size_t> sizes_;  // live mapped blocks
  std::multimap<size_t, void*> free_;        // cached mapped blocks by size
  size_t live_ = 0, cached_ = 0, peak_live_ = 0;
};

// Where a model's CUDA work is queued. run(fn) runs fn with it current and returns once all the
// work fn queued has finished, so host memory fn copied into is then safe to read.
//
// With a CUDA libtorch it is the model's own stream from libtorch's pool, so the model's copies
// and kernels are not serialised with whatever else is queued on the device's default stream.
// The weights were copied and the contract probed on the
// default stream, which a pool stream does not wait for, hence the one device synchronisation at
// construction. With a CPU libtorch (no c10_cuda) the constructor refuses CUDA devices, so this
// stand-in, which synchronises the whole device, is compiled but never used.
#if defined(YW_TORCH_CUDA)
class ModelStream {
 public:
  explicit ModelStream(const torch::Device& device)
      : stream_(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index())) {
    torch::cuda::synchronize(device.index());
  }
  template <typename Fn>
  void run(Fn&& fn) const {
    {
      const c10::cuda::CUDAStreamGuard current(stream_);
      fn();
    }
    stream_.synchronize();
  }

 private:
  c10::cuda::CUDAStream stream_;
};
#else
class ModelStream {
 public:
  explicit ModelStream(const torch::Device& device) : index_(device.index()) {}
  template <typename Fn>
  void run(Fn&& fn) const {
    fn();
    torch::cuda::synchronize(index_);
  }

 private:
  int64_t index_;
};
#endif

class TorchModel final : public SegmentModel {
 public:
  TorchModel(const TorchModelRequest& req) : path_(req.path), device_(torch::kCPU) {
    if (req.device_kind == 1) {
      if (!torch::cuda::is_available() ||
          req.device_index >= static_cast<int>(torch::cuda::device_count())) {
        throw OpenFailure{TorchOpenError::device,
                          fmt::format("model {}: device cuda:{} is not available to libtorch "
                                      "({} CUDA devices visible; this libtorch {} CUDA)",
                                      path_, req.device_index, torch::cuda::device_count(),
                                      torch::cuda::is_available() ? "has" : "lacks or cannot use")};
      }
      device_ = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(req.device_index));
    }
    threads_ = std::max(1, req.threads);
    at::set_num_threads(threads_);
    if (!device_.is_cuda()) hand_big_blocks_back();
    try {
      module_ = torch::jit::load(path_, device_);
    } catch (const c10::Error& e) {
      throw OpenFailure{TorchOpenError::model,
                        fmt::format("model {}: not a loadable TorchScript file: {}", path_,
                                    first_line(e.what_without_backtrace()))};
    }
    module_.eval();
    check_contract();
    if (device_.is_cuda()) stream_.emplace(device_);
  }

  const ModelInfo& info() const override { return info_; }

  // Demucs' own float32 reductions (ref = wav.mean(0); ref.mean(); ref.std() + 1e-8), with the
  // same libtorch kernels: the channel mean is a sum over channels divided by their count, as
  // torch's CPU mean is. Runs on the caller's thread at the model's thread count, since a
  // parallel reduction's rounding depends on how many threads split it.
  MixStats mix_stats(std::span<const float* const> channels, int64_t length) const override {
    if (at::get_num_threads() != threads_) at::set_num_threads(threads_);
    torch::InferenceMode guard;
    try {
      const auto opts = torch::TensorOptions().dtype(torch::kFloat32);
      const auto wrap = [&](const float* p) {
        return torch::from_blob(const_cast<float*>(p), {length}, opts);
      };
      auto ref = wrap(channels[0]).clone();
      for (size_t c = 1; c < channels.size(); ++c)
        ref.add_(wrap(channels[c]));
      ref.div_(static_cast<int64_t>(channels.size()));
      const auto mean = ref.mean();
      const auto scale = ref.std() + 1e-8;
      return {mean.item<float>(), scale.item<float>()};
    } catch (const c10::Error& e) {
      YW_THROW("model {}: mix statistics failed: {}", path_,
               first_line(e.what_without_backtrace()));
    }
  }

  void forward(const float* in, int batch, int64_t length, float* out) override {
    // With the OpenMP backend the thread count is per calling thread; the caller is the
    // separator's runner thread, not the thread that loaded the model.
    if (at::get_num_threads() != threads_) at::set_num_threads(threads_);
    torch::InferenceMode guard;
    try {
      if (device_.is_cuda()) {
        forward_cuda(in, batch, length, out);
      } else {
        const int64_t c = info_.channels;
        const auto s = static_cast<int64_t>(info_.sources.size());
        auto x = torch::from_blob(const_cast<float*>(in), {batch, c, length}, torch::kFloat32)
                     .to(device_);
        auto y = run(x);
        check_output(y, batch, length);
        y = y.to(torch::kCPU, torch::kFloat32).contiguous();
        std::memcpy(out, y.data_ptr<float>(),
                    static_cast<size_t>(batch * s * c * length) * sizeof(float));
      }
    } catch (const c10::Error& e) {
      const std::string what = first_line(e.what_without_backtrace());
      release_cached_memory(what);
      YW_THROW("model {}: forward failed: {}", path_, what);
    } catch (const std::runtime_error& e) {
      // Only run() and check_output() throw these: the model's output is not what its
      // attributes promise (checked here, not by a probe at load, for declared shapes).
      YW_THROW("model {}: breaks the separator contract: {}", path_, e.what());
    }
  }

 private:
  // After a CUDA out-of-memory the separator retries in halves; the caching allocator still
  // holds the blocks of the failed batch, so they go back to the device first, for the halves and
  // for the CUDA twins beside libtorch. (Sticky errors are not retried: device_health.hpp.)
  void release_cached_memory(const std::string& what) const {
#if defined(YW_TORCH_CUDA)
    if (device_.is_cuda() && what.find("out of memory") != std::string::npos)
      c10::cuda::CUDACachingAllocator::emptyCache();
#else
    (void)what;
#endif
  }

  // glibc raises its mmap threshold up to 32 MB after the first large free, so blocks malloc'ed
  // during a CPU forward (libtorch's tensors before BlockCache, other libraries' buffers) come from
  // the runner thread's and the OpenMP threads' arenas, whose freed pages stay resident. On a
  // 3-minute song with htdemucs (2 threads) the worker's peak RSS reached 1.95 GB that way, where
  // Demucs' CLI stayed at 1.70 GB. A fixed threshold (which also stops the raise) hands every
  // malloc'ed block of 128 KiB or more back when freed; libtorch's tensors go to BlockCache,
  // which keeps them for the next window. Process-wide, set once.
  static void hand_big_blocks_back() {
    static const bool once = [] {
      c10::SetCPUAllocator(&BlockCache::instance(), /*priority=*/100);
      return mallopt(M_MMAP_THRESHOLD, 128 * 1024) != 0;
    }();
    (void)once;
  }

  // Both copies go through pinned host tensors: from pageable memory the driver stages the copy
  // itself and blocks the host, from pinned memory it is a DMA queued on the stream
  // (non_blocking). libtorch's pinned allocator caches its blocks and does not hand one out again
  // while a copy queued on it is pending, so allocating them per call does not pin memory per
  // call once the batch shapes have been seen.
  void forward_cuda(const float* in, int batch, int64_t length, float* out) {
    const int64_t c = info_.channels;
    const auto s = static_cast<int64_t>(info_.sources.size());
    const auto pinned = torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(true);
    torch::Tensor host_out;
    stream_->run([&] {
      auto host_in = torch::empty({batch, c, length}, pinned);
      std::memcpy(host_in.data_ptr<float>(), in,
                  static_cast<size_t>(batch * c * length) * sizeof(float));
      auto y = run(host_in.to(device_, torch::kFloat32, /*non_blocking=*/true));
      check_output(y, batch, length);
      // A float32 contiguous result makes the copy back one DMA; a model that returns another
      // dtype or layout is converted on the device first.
      y = y.to(torch::kFloat32).contiguous();
      host_out = torch::empty({batch, s, c, length}, pinned);
      host_out.copy_(y, /*non_blocking=*/true);
    });
    std::memcpy(out, host_out.data_ptr<float>(),
                static_cast<size_t>(batch * s * c * length) * sizeof(float));
  }

  torch::Tensor run(const torch::Tensor& x) {
    auto r = module_.forward({x});
    if (!r.isTensor())
      throw std::runtime_error(fmt::format("forward returned a {}, not a Tensor", r.tagKind()));
    return r.toTensor();
  }

  void check_output(const torch::Tensor& y, int64_t batch, int64_t length) const {
    const auto s = static_cast<int64_t>(info_.sources.size());
    const std::vector<int64_t> want{batch, s, info_.channels, length};
    if (y.dim() != 4 || y.sizes().vec() != want) {
      throw std::runtime_error(
          fmt::format("forward must return [batch, sources, channels, time] = [{}], got [{}]",
                      fmt::join(want, ", "), fmt::join(y.sizes().vec(), ", ")));
    }
    if (!y.is_floating_point())
      throw std::runtime_error("forward must return a floating-point tensor");
  }

  void fail(const std::string& what) const {
    throw OpenFailure{TorchOpenError::model,
                      fmt::format("model {}: breaks the separator contract: {}", path_, what)};
  }

  int64_t int_attr(const char* name, bool required) const {
    if (!module_.hasattr(name)) {
      if (required) fail(fmt::format("attribute '{}' (int) is missing", name));
      return 0;
    }
    const auto v = module_.attr(name);
    if (!v.isInt())
      fail(fmt::format("attribute '{}' must be an int, it is a {}", name, v.tagKind()));
    return v.toInt();
  }

  void check_contract() {
    if (!module_.find_method("forward")) fail("it has no forward method");
    const auto& schema = module_.get_method("forward").function().getSchema();
    if (schema.arguments().size() != 2)
      fail(fmt::format("forward must take one tensor (mix), it takes {} arguments",
                       schema.arguments().size() - 1));

    if (!module_.hasattr("sources")) fail("attribute 'sources' (List[str]) is missing");
    const auto sources = module_.attr("sources");
    if (!sources.isList()) fail("attribute 'sources' must be a List[str]");
    std::set<std::string> seen;
    for (const auto& v : sources.toListRef()) {
      if (!v.isString()) fail("attribute 'sources' must be a List[str]");
      const std::string name = v.toStringRef();
      if (name.empty() || name.find('/') != std::string::npos || !seen.insert(name).second)
        fail(fmt::format("source name '{}' is empty, repeated or contains '/'", name));
      info_.sources.push_back(name);
    }
    if (info_.sources.empty()) fail("attribute 'sources' is empty");

    const int64_t rate = int_attr("samplerate", true);
    if (rate < 1000 || rate > 768000) fail(fmt::format("samplerate {} is not plausible", rate));
    info_.sample_rate = static_cast<int>(rate);
    const int64_t channels = int_attr("audio_channels", true);
    if (channels < 1 || channels > 8)
      fail(fmt::format("audio_channels {} is not in 1..8", channels));
    info_.channels = static_cast<int>(channels);
    info_.segment_samples = int_attr("segment_samples", false);
    // 0 means "any length", for scripted models that keep the attribute.
    if (info_.segment_samples < 0 || (info_.segment_samples > 0 && info_.segment_samples < 16))
      fail(fmt::format("segment_samples {} is not 0 or >= 16", info_.segment_samples));

    // A model that declares its one legal shape (segment_samples, as a traced export does) is
    // not run here: a trace of htdemucs costs a whole 7.8 s forward (54-107 s on a 2-core CPU),
    // and every batch's output shape is checked anyway (check_output). A model that takes any
    // length gets one probe of a quarter second, shorter than any window the worker sends it.
    if (info_.segment_samples > 0) return;
    const int64_t probe = std::max<int64_t>(16, info_.sample_rate / 4);
    torch::InferenceMode guard;
    try {
      auto x =
          torch::randn({1, info_.channels, probe}, torch::TensorOptions().device(device_)) * 0.1;
      check_output(run(x), 1, probe);
    } catch (const c10::Error& e) {
      fail(fmt::format("probe forward on [1, {}, {}] failed: {}", info_.channels, probe,
                       first_line(e.what_without_backtrace())));
    } catch (const std::runtime_error& e) {
      fail(e.what());
    }
  }

  std::string path_;
  torch::Device device_;
  std::optional<ModelStream> stream_;  // set for a CUDA device
  torch::jit::Module module_;
  ModelInfo info_;
  int threads_ = 1;
};

}  // namespace
}  // namespace yw::models

extern "C" __attribute__((visibility("default"))) yw::models::SegmentModel* yw_torch_open_model_v1(
    const yw::models::TorchModelRequest* request, char* error, std::size_t error_size,
    int* error_kind) {
  using yw::models::TorchOpenError;
  auto report = [&](TorchOpenError kind, const std::string& msg) {
    if (error_kind) *error_kind = static_cast<int>(kind);
    if (error && error_size) {
      const size_t n = std::min(error_size - 1, msg.size());
      std::memcpy(error, msg.data(), n);
      error[n] = '\0';
    }
  };
  try {
    return new yw::models::TorchModel(*request);
  } catch (const yw::models::OpenFailure& f) {
    report(f.kind, f.message);
  } catch (const c10::Error& e) {
    report(TorchOpenError::model, fmt::format("model {}: {}", request->path,
                                              yw::models::first_line(e.what_without_backtrace())));
  } catch (const std::exception& e) {
    report(TorchOpenError::model, fmt::format("model {}: {}", request->path, e.what()));
  }
  return nullptr;
}
