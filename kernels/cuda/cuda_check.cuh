// Shared by the CUDA twins (kernels/cuda/*.cu only): errors of the CUDA runtime and of cuFFT
// become yw::Error naming the twin, the call and CUDA's own words (style.md habit 9), and
// DeviceArray owns a plain cudaMalloc allocation.
#pragma once

#include <cuda_runtime.h>
#include <cufft.h>

#include <cstddef>

#include "yw/common/error.hpp"

// `what` names the twin in messages, e.g. "fingerprint on cuda". The sticky error is cleared so
// one failure does not poison the next call on this thread.
#define YW_CUDA_CHECK(what, expr)                                                  \
  do {                                                                             \
    const cudaError_t yw_err_ = (expr);                                            \
    if (yw_err_ != cudaSuccess) {                                                  \
      cudaGetLastError();                                                          \
      YW_THROW("{}: {} failed: {} ({})", what, #expr, cudaGetErrorString(yw_err_), \
               cudaGetErrorName(yw_err_));                                         \
    }                                                                              \
  } while (0)
#define YW_CUFFT_CHECK(what, expr)                                                       \
  do {                                                                                   \
    const cufftResult yw_res_ = (expr);                                                  \
    if (yw_res_ != CUFFT_SUCCESS)                                                        \
      YW_THROW("{}: {} failed: cufftResult {}", what, #expr, static_cast<int>(yw_res_)); \
  } while (0)

namespace yw::cuda {

// `count` elements of T in device memory, freed on destruction. Synchronous copies.
template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(std::size_t count) {
    if (count) YW_CUDA_CHECK("cuda", cudaMalloc(&ptr_, count * sizeof(T)));
  }
  ~DeviceArray() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() const { return ptr_; }
  void upload(const T* src, std::size_t count) {
    if (count)
      YW_CUDA_CHECK("cuda", cudaMemcpy(ptr_, src, count * sizeof(T), cudaMemcpyHostToDevice));
  }
  void download(T* dst, std::size_t count) const {
    if (count)
      YW_CUDA_CHECK("cuda", cudaMemcpy(dst, ptr_, count * sizeof(T), cudaMemcpyDeviceToHost));
  }

 private:
  T* ptr_ = nullptr;
};

}  // namespace yw::cuda
