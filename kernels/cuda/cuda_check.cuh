// Shared by the CUDA twins (kernels/cuda/*.cu only): errors of the CUDA runtime and of cuFFT
// become yw::Error naming the twin, the call and CUDA's own words (style.md habit 9); RAII owners
// of device memory (DeviceArray), page-locked host memory (PinnedBuffer), streams and events.
//
// None of these owners is thread-safe, and none switches devices: each belongs to the device that
// was current (cudaSetDevice) when it allocated, and the caller keeps that device current while
// using it. Destructors never throw; errors there (e.g. at process exit) are ignored.
#pragma once

#include <cuda_runtime.h>
#include <cufft.h>

#include <algorithm>
#include <cstddef>

#include "yw/common/error.hpp"

// A kernel launch: `kernel<<<blocks, threads, 0, stream>>>(args...)`. Written as a macro so that
// the same .cu sources also compile as C++ against the host stand-in runtime of the tests
// (tests/kernels/cuda_host/, which defines YW_CUDA_HOST), where it runs every thread of the grid
// in a loop on the CPU.
#ifdef YW_CUDA_HOST
#define YW_LAUNCH(kernel, blocks, threads, stream, ...) \
  ::yw::cuda_host::launch((blocks), (threads), (stream), [&] { kernel(__VA_ARGS__); })
#else
#define YW_LAUNCH(kernel, blocks, threads, stream, ...) \
  kernel<<<(blocks), (threads), 0, (stream)>>>(__VA_ARGS__)
#endif

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

// `count` elements of T in device memory, freed on destruction. upload/download are synchronous
// (cudaMemcpy on the legacy default stream); the *_async forms are ordered on `stream` only.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(const char* what, std::size_t count) { reserve(what, count); }
  ~DeviceArray() { release(); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() const { return ptr_; }
  std::size_t capacity() const { return capacity_; }

  // At least `count` elements. Reallocates only to grow, and then the contents are lost; the
  // caller must know that no queued work still uses the old allocation (cudaFree also waits for
  // the whole device, so growing is a synchronisation point: keep it out of steady state).
  // `what` names the twin in the error, as every other call here.
  void reserve(const char* what, std::size_t count) {
    if (count <= capacity_) return;
    release();
    YW_CUDA_CHECK(what, cudaMalloc(&ptr_, count * sizeof(T)));
    capacity_ = count;
  }
  void release() noexcept {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    capacity_ = 0;
  }

  void upload(const char* what, const T* src, std::size_t count) {
    if (count)
      YW_CUDA_CHECK(what, cudaMemcpy(ptr_, src, count * sizeof(T), cudaMemcpyHostToDevice));
  }
  void download(const char* what, T* dst, std::size_t count) const {
    if (count)
      YW_CUDA_CHECK(what, cudaMemcpy(dst, ptr_, count * sizeof(T), cudaMemcpyDeviceToHost));
  }
  // Elements [offset, offset + count) from/to host memory. The copy overlaps other streams only
  // when the host memory is page-locked (PinnedBuffer); the host memory must stay untouched until
  // the copy has completed on `stream`.
  void upload_async(const char* what, const T* src, std::size_t offset, std::size_t count,
                    cudaStream_t stream) {
    if (count)
      YW_CUDA_CHECK(what, cudaMemcpyAsync(ptr_ + offset, src, count * sizeof(T),
                                          cudaMemcpyHostToDevice, stream));
  }
  void download_async(const char* what, T* dst, std::size_t offset, std::size_t count,
                      cudaStream_t stream) const {
    if (count)
      YW_CUDA_CHECK(what, cudaMemcpyAsync(dst, ptr_ + offset, count * sizeof(T),
                                          cudaMemcpyDeviceToHost, stream));
  }

 private:
  T* ptr_ = nullptr;
  std::size_t capacity_ = 0;
};

// `count` elements of T in page-locked (pinned) host memory, kept across calls and freed on
// destruction. Pinned because only page-locked memory lets cudaMemcpyAsync run as a DMA that
// overlaps kernels and the host; from pageable memory the driver copies through its own bounce
// buffer and the call returns only once the data has been staged. Pinning costs far more than
// malloc and takes memory from the OS, so buffers are grown rarely (by at least half again) and
// never allocated per call.
template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { release(); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  T* get() const { return ptr_; }
  std::size_t capacity() const { return capacity_; }

  // At least `count` elements; as DeviceArray::reserve, growing loses the contents and the caller
  // must know that no queued copy still reads or writes the old allocation.
  T* reserve(const char* what, std::size_t count) {
    if (count <= capacity_) return ptr_;
    const std::size_t grown = std::max(count, capacity_ + capacity_ / 2);
    release();
    void* p = nullptr;
    YW_CUDA_CHECK(what, cudaHostAlloc(&p, grown * sizeof(T), cudaHostAllocPortable));
    ptr_ = static_cast<T*>(p);
    capacity_ = grown;
    return ptr_;
  }
  void release() noexcept {
    if (ptr_) cudaFreeHost(ptr_);
    ptr_ = nullptr;
    capacity_ = 0;
  }

 private:
  T* ptr_ = nullptr;
  std::size_t capacity_ = 0;
};

// A stream of the current device that does not synchronise with the legacy default stream
// (cudaStreamNonBlocking), so other users of the device (libtorch, the other twin) neither wait
// for it nor make it wait.
class Stream {
 public:
  explicit Stream(const char* what) {
    YW_CUDA_CHECK(what, cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  ~Stream() {
    if (stream_) cudaStreamDestroy(stream_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }
  void synchronize(const char* what) const { YW_CUDA_CHECK(what, cudaStreamSynchronize(stream_)); }
  // For error paths: waits for queued work and swallows its error, so buffers it uses can be
  // released or reused.
  void drain() const noexcept {
    if (cudaStreamSynchronize(stream_) != cudaSuccess) cudaGetLastError();
  }

 private:
  cudaStream_t stream_ = nullptr;
};

// An ordering point between streams, or between a stream and the host. No timing.
class Event {
 public:
  explicit Event(const char* what) {
    YW_CUDA_CHECK(what, cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
  }
  ~Event() {
    if (event_) cudaEventDestroy(event_);
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  // Marks the work queued on `stream` so far.
  void record(const char* what, cudaStream_t stream) {
    YW_CUDA_CHECK(what, cudaEventRecord(event_, stream));
  }
  // Work queued on `stream` from now on starts after the last record() has completed; a later
  // record() does not affect it.
  void make_wait(const char* what, cudaStream_t stream) const {
    YW_CUDA_CHECK(what, cudaStreamWaitEvent(stream, event_, 0));
  }
  void synchronize(const char* what) const { YW_CUDA_CHECK(what, cudaEventSynchronize(event_)); }

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace yw::cuda
