// The host stand-in runtime (cuda_runtime.h, cufft.h here). One process-wide state under one
// mutex: the tests drive it from one thread at a time, and launches run on the calling thread.
#include "cuda_host.hpp"

#include <fftw3.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "cuda_runtime.h"
#include "cufft.h"
#include "yw/kernels/fftw_planner.hpp"

struct CUstream_st {
  int device;
};
struct CUevent_st {
  int device;
};

namespace {

constexpr int kDevices = 4096;  // device numbers the stand-in accepts (tests use fresh ones)

struct Allocation {
  int device;
  std::size_t bytes;
};

struct FftPlan {
  int n = 0, batch = 0, idist = 0, odist = 0;
  cufftType type = CUFFT_R2C;
  fftwf_plan plan = nullptr;
  float* real = nullptr;
  fftwf_complex* spec = nullptr;
};

struct State {
  std::mutex mutex;
  std::size_t allocations = 0;
  std::optional<std::size_t> fail_at;
  std::map<void*, Allocation> memory;
  std::map<int, std::unique_ptr<FftPlan>> plans;
  int next_plan = 1;
  std::map<int, cudaError_t> sticky;  // devices whose context a kernel fault has poisoned
};

State& state() {
  static auto* s = new State();  // never destroyed: runners in the .cu files outlive statics
  return *s;
}

thread_local int current_device = 0;
thread_local cudaError_t last_error = cudaSuccess;
thread_local int next_launch_error = 0;

// One allocation point; true when it is the one armed to fail.
bool take_allocation(State& s) {
  const std::size_t index = s.allocations++;
  if (s.fail_at && *s.fail_at == index) {
    s.fail_at.reset();
    return true;
  }
  return false;
}

// A poisoned device answers every call with its sticky error, as a real context does.
cudaError_t sticky_error(State& s) {
  const auto it = s.sticky.find(current_device);
  return it == s.sticky.end() ? cudaSuccess : it->second;
}

cudaError_t fail(cudaError_t err) {
  last_error = err;
  return err;
}

// Up to kPoisonBytes, fresh memory is filled with 0xFF, so every float and double reads as NaN
// until written; larger buffers (the fingerprint slots' 64 MiB plan areas) come zeroed from
// calloc instead, untouched until used, so that a case with a fresh runner per allocation point
// costs page faults only for what the twin really touches.
constexpr std::size_t kPoisonBytes = std::size_t{4} << 20;

void* allocate(State& s, std::size_t bytes) {
  void* p = bytes > kPoisonBytes ? std::calloc(bytes, 1) : std::malloc(bytes ? bytes : 1);
  if (!p) return nullptr;
  if (bytes <= kPoisonBytes) std::memset(p, 0xFF, bytes);
  s.memory[p] = {current_device, bytes};
  return p;
}

cudaError_t release(State& s, void* p) {
  if (!p) return cudaSuccess;
  const auto it = s.memory.find(p);
  if (it == s.memory.end()) return cudaErrorInvalidValue;  // reset_device freed it already
  s.memory.erase(it);
  std::free(p);
  return cudaSuccess;
}

}  // namespace

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidDevice:
      return "invalid device ordinal";
    case cudaErrorIllegalAddress:
      return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure";
  }
  return "unknown error";
}

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidDevice:
      return "cudaErrorInvalidDevice";
    case cudaErrorIllegalAddress:
      return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

cudaError_t cudaGetLastError() {
  State& s = state();
  std::lock_guard lock(s.mutex);
  const cudaError_t sticky = sticky_error(s);
  if (sticky != cudaSuccess) return sticky;  // sticky errors are not cleared by reading them
  const cudaError_t err = last_error;
  last_error = cudaSuccess;
  return err;
}

cudaError_t cudaPeekAtLastError() {
  State& s = state();
  std::lock_guard lock(s.mutex);
  const cudaError_t sticky = sticky_error(s);
  return sticky != cudaSuccess ? sticky : last_error;
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= kDevices) return fail(cudaErrorInvalidDevice);
  current_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  *device = current_device;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  State& s = state();
  std::lock_guard lock(s.mutex);
  return sticky_error(s);
}

cudaError_t cudaMalloc(void** ptr, std::size_t bytes) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  *ptr = nullptr;
  if (const cudaError_t err = sticky_error(s)) return err;
  if (take_allocation(s)) return fail(cudaErrorMemoryAllocation);
  *ptr = allocate(s, bytes);
  return *ptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaFree(void* ptr) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  return release(s, ptr);
}

cudaError_t cudaHostAlloc(void** ptr, std::size_t bytes, unsigned /*flags*/) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  *ptr = nullptr;
  if (take_allocation(s)) return fail(cudaErrorMemoryAllocation);
  *ptr = allocate(s, bytes);
  return *ptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeHost(void* ptr) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  return release(s, ptr);
}

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind /*kind*/) {
  State& s = state();
  {
    std::lock_guard lock(s.mutex);
    if (const cudaError_t err = sticky_error(s)) return err;
  }
  if (bytes) std::memcpy(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t /*stream*/) {
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t bytes, cudaStream_t /*stream*/) {
  State& s = state();
  {
    std::lock_guard lock(s.mutex);
    if (const cudaError_t err = sticky_error(s)) return err;
  }
  if (bytes) std::memset(dst, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned /*flags*/) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  *stream = nullptr;
  if (const cudaError_t err = sticky_error(s)) return err;
  if (take_allocation(s)) return fail(cudaErrorMemoryAllocation);
  *stream = new CUstream_st{current_device};
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t /*stream*/) {
  return cudaDeviceSynchronize();
}

cudaError_t cudaStreamWaitEvent(cudaStream_t /*stream*/, cudaEvent_t /*event*/,
                                unsigned /*flags*/) {
  return cudaDeviceSynchronize();
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned /*flags*/) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  *event = nullptr;
  if (const cudaError_t err = sticky_error(s)) return err;
  if (take_allocation(s)) return fail(cudaErrorMemoryAllocation);
  *event = new CUevent_st{current_device};
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t /*event*/, cudaStream_t /*stream*/) {
  return cudaDeviceSynchronize();
}

cudaError_t cudaEventSynchronize(cudaEvent_t /*event*/) {
  return cudaDeviceSynchronize();
}

namespace yw::cuda_host {

void launch(unsigned blocks, unsigned threads, cudaStream_t /*stream*/,
            const std::function<void()>& body) {
  State& s = state();
  {
    std::lock_guard lock(s.mutex);
    if (const cudaError_t err = sticky_error(s)) {
      last_error = err;
      return;
    }
    if (next_launch_error != 0) {
      // A fault inside the kernel: the context is unusable from now on.
      s.sticky[current_device] = static_cast<cudaError_t>(next_launch_error);
      next_launch_error = 0;
      return;
    }
  }
  if (blocks == 0 || threads == 0) {
    last_error = cudaErrorInvalidValue;
    return;
  }
  gridDim = {blocks, 1, 1};
  blockDim = {threads, 1, 1};
  for (unsigned b = 0; b < blocks; ++b) {
    blockIdx = {b, 0, 0};
    for (unsigned t = 0; t < threads; ++t) {
      threadIdx = {t, 0, 0};
      body();
    }
  }
}

std::size_t allocations() {
  State& s = state();
  std::lock_guard lock(s.mutex);
  return s.allocations;
}

void fail_allocation(std::optional<std::size_t> index) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  s.fail_at = index;
}

std::size_t bytes_in_use() {
  State& s = state();
  std::lock_guard lock(s.mutex);
  std::size_t total = 0;
  for (const auto& [p, a] : s.memory)
    total += a.bytes;
  return total;
}

void reset_device(int device) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  for (auto it = s.memory.begin(); it != s.memory.end();) {
    if (it->second.device == device) {
      std::free(it->first);
      it = s.memory.erase(it);
    } else {
      ++it;
    }
  }
  s.sticky.erase(device);
}

void fail_next_launch(int error) {
  next_launch_error = error;
}

}  // namespace yw::cuda_host

// ---- cuFFT --------------------------------------------------------------------------------

cufftResult cufftPlanMany(cufftHandle* plan, int rank, int* n, int* inembed, int istride, int idist,
                          int* onembed, int ostride, int odist, cufftType type, int batch) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  if (rank != 1 || inembed || onembed || istride != 1 || ostride != 1 || batch < 1 || n[0] < 2)
    return CUFFT_INVALID_VALUE;  // the only layout the twins use
  if (take_allocation(s)) return CUFFT_ALLOC_FAILED;
  auto p = std::make_unique<FftPlan>();
  p->n = n[0];
  p->batch = batch;
  p->idist = idist;
  p->odist = odist;
  p->type = type;
  {
    std::lock_guard planner(yw::fftw_planner_mutex());
    p->real = fftwf_alloc_real(static_cast<std::size_t>(p->n));
    p->spec = fftwf_alloc_complex(static_cast<std::size_t>(p->n / 2 + 1));
    if (!p->real || !p->spec) return CUFFT_ALLOC_FAILED;
    p->plan = type == CUFFT_R2C ? fftwf_plan_dft_r2c_1d(p->n, p->real, p->spec, FFTW_ESTIMATE)
                                : fftwf_plan_dft_c2r_1d(p->n, p->spec, p->real, FFTW_ESTIMATE);
  }
  if (!p->plan) return CUFFT_ALLOC_FAILED;
  *plan = s.next_plan++;
  s.plans[*plan] = std::move(p);
  return CUFFT_SUCCESS;
}

cufftResult cufftSetStream(cufftHandle plan, cudaStream_t /*stream*/) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  return s.plans.count(plan) ? CUFFT_SUCCESS : CUFFT_INVALID_PLAN;
}

cufftResult cufftDestroy(cufftHandle plan) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  const auto it = s.plans.find(plan);
  if (it == s.plans.end()) return CUFFT_INVALID_PLAN;
  {
    std::lock_guard planner(yw::fftw_planner_mutex());
    fftwf_destroy_plan(it->second->plan);
    fftwf_free(it->second->real);
    fftwf_free(it->second->spec);
  }
  s.plans.erase(it);
  return CUFFT_SUCCESS;
}

namespace {

FftPlan* find_plan(cufftHandle plan, cufftType type) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  if (sticky_error(s) != cudaSuccess) return nullptr;
  const auto it = s.plans.find(plan);
  return it == s.plans.end() || it->second->type != type ? nullptr : it->second.get();
}

}  // namespace

cufftResult cufftExecR2C(cufftHandle plan, cufftReal* in, cufftComplex* out) {
  FftPlan* p = find_plan(plan, CUFFT_R2C);
  if (!p) return CUFFT_EXEC_FAILED;
  const auto n = static_cast<std::size_t>(p->n);
  const std::size_t bins = n / 2 + 1;
  for (int b = 0; b < p->batch; ++b) {
    std::memcpy(p->real, in + static_cast<std::size_t>(b) * static_cast<std::size_t>(p->idist),
                n * sizeof(float));
    fftwf_execute(p->plan);
    std::memcpy(out + static_cast<std::size_t>(b) * static_cast<std::size_t>(p->odist), p->spec,
                bins * sizeof(cufftComplex));
  }
  return CUFFT_SUCCESS;
}

cufftResult cufftExecC2R(cufftHandle plan, cufftComplex* in, cufftReal* out) {
  FftPlan* p = find_plan(plan, CUFFT_C2R);
  if (!p) return CUFFT_EXEC_FAILED;
  const auto n = static_cast<std::size_t>(p->n);
  const std::size_t bins = n / 2 + 1;
  for (int b = 0; b < p->batch; ++b) {
    std::memcpy(p->spec, in + static_cast<std::size_t>(b) * static_cast<std::size_t>(p->idist),
                bins * sizeof(cufftComplex));
    fftwf_execute(p->plan);
    std::memcpy(out + static_cast<std::size_t>(b) * static_cast<std::size_t>(p->odist), p->real,
                n * sizeof(float));
  }
  return CUFFT_SUCCESS;
}
