// A host stand-in for the part of the CUDA runtime that kernels/cuda/*.cu use, so that those
// sources compile as C++ and run on the CPU in every CI configuration (issue 13): kernels run
// thread by thread over the launch grid (YW_LAUNCH in cuda_check.cuh); device and pinned memory
// are heap memory, so ASan sees every out-of-bounds access, and buffers up to 4 MiB are poisoned
// so that a read of memory never written shows up as NaN; streams and events are immediate (work
// runs in issue order, so this checks indexing, chunking, arithmetic and error paths, not stream
// ordering). Every allocation (memory, stream, event, FFT plan) counts as one allocation point,
// and the tests can make any one of them fail (cuda_host.hpp). Not the real runtime: nothing here
// talks to a GPU; the `gpu` label runs the same .cu files on a device.
#pragma once

#include <math.h>  // the kernels call sqrt, log, hypotf, powf unqualified, as device code does

#include <cstddef>
#include <cstring>
#include <functional>

#define YW_CUDA_HOST 1
#define __global__
#define __device__
#define __host__
#define __constant__

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidDevice = 101,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
};
inline constexpr unsigned cudaHostAllocPortable = 1;
inline constexpr unsigned cudaStreamNonBlocking = 1;
inline constexpr unsigned cudaEventDisableTiming = 2;

struct CUstream_st;
struct CUevent_st;
using cudaStream_t = CUstream_st*;
using cudaEvent_t = CUevent_st*;

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
// The executing thread's coordinates, set by the launch loop.
inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

struct float2 {
  float x, y;
};
inline float2 make_float2(float x, float y) {
  return {x, y};
}

// Round-to-nearest intrinsics: plain operations, which the test TUs compile with
// -ffp-contract=off so that nothing is fused.
inline float __fmul_rn(float a, float b) {
  return a * b;
}
inline float __fadd_rn(float a, float b) {
  return a + b;
}
inline double __dadd_rn(double a, double b) {
  return a + b;
}
inline double __dsub_rn(double a, double b) {
  return a - b;
}
inline double __dmul_rn(double a, double b) {
  return a * b;
}
inline double __ddiv_rn(double a, double b) {
  return a / b;
}

// Integer intrinsics of the rescoring twin (fingerprint_match.cu). Threads run one after another
// here, so an atomic add is a plain add.
inline int __popc(unsigned int x) {
  return __builtin_popcount(x);
}
inline unsigned long long atomicAdd(unsigned long long* address, unsigned long long value) {
  const unsigned long long old = *address;
  *address = old + value;
  return old;
}

const char* cudaGetErrorString(cudaError_t err);
const char* cudaGetErrorName(cudaError_t err);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMalloc(void** ptr, std::size_t bytes);
template <typename T>
cudaError_t cudaMalloc(T** ptr, std::size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
cudaError_t cudaFree(void* ptr);
cudaError_t cudaHostAlloc(void** ptr, std::size_t bytes, unsigned flags);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream);
cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t bytes, cudaStream_t stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
// __constant__ symbols are ordinary globals here.
template <typename T>
cudaError_t cudaMemcpyToSymbol(T& symbol, const void* src, std::size_t bytes) {
  if (bytes > sizeof(T)) return cudaErrorInvalidValue;
  std::memcpy(&symbol, src, bytes);
  return cudaSuccess;
}

namespace yw::cuda_host {

// Runs `body` once per thread of a blocks x threads grid, block after block, with threadIdx,
// blockIdx, blockDim and gridDim set as a device would. A grid of zero blocks is a launch error
// on a device (cudaErrorInvalidConfiguration); here it is recorded for cudaGetLastError too.
void launch(unsigned blocks, unsigned threads, cudaStream_t stream,
            const std::function<void()>& body);

}  // namespace yw::cuda_host
