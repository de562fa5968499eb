// ref: bit_errors_batch_cpu (kernels/cpu/fingerprint_match.cpp). Integer popcounts only, so the
// sums are the CPU twin's exactly, whatever the summation order.
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "cuda_check.cuh"
#include "yw/kernels/cuda/fingerprint_match_cuda.hpp"

namespace yw {
namespace {

constexpr const char* kWhat = "fingerprint match on cuda";
constexpr int kThreads = 128;

struct DeviceTask {
  unsigned long long cand_offset;  // first item of the task in the concatenated candidates
  unsigned int query_start;
  unsigned int count;
};

__global__ void bit_errors_kernel(const std::uint32_t* query, const std::uint32_t* cands,
                                  const DeviceTask* tasks, unsigned long long* out) {
  const DeviceTask t = tasks[blockIdx.x];
  const std::uint32_t* q = query + t.query_start;
  const std::uint32_t* c = cands + t.cand_offset;
  unsigned int n = 0;
  for (unsigned int i = threadIdx.x; i < t.count; i += blockDim.x)
    n += static_cast<unsigned int>(__popc(q[i] ^ c[i]));
  // One integer atomic per thread that counted something: exact in any order. No warp shuffle,
  // so the kernel also runs thread by thread in the host stand-in runtime of the tests
  // (tests/kernels/cuda_host), where lanes do not run in step.
  if (n != 0) atomicAdd(&out[blockIdx.x], static_cast<unsigned long long>(n));
}

}  // namespace

std::vector<std::uint64_t> bit_errors_batch_cuda(const std::uint32_t* query, std::size_t query_size,
                                                 const std::vector<ItemsView>& candidates,
                                                 const std::vector<BitErrorTask>& tasks,
                                                 int device) {
  std::vector<std::uint64_t> out(tasks.size(), 0);
  if (tasks.empty()) return out;
  YW_CUDA_CHECK(kWhat, cudaSetDevice(device));
  // Only the candidates some task names travel; each once.
  std::vector<long long> base(candidates.size(), -1);
  std::vector<std::uint32_t> host_cands;
  std::vector<DeviceTask> host_tasks(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const auto& t = tasks[i];
    if (base[t.candidate] < 0) {
      base[t.candidate] = static_cast<long long>(host_cands.size());
      const auto& c = candidates[t.candidate];
      host_cands.insert(host_cands.end(), c.data, c.data + c.size);
    }
    host_tasks[i] = {static_cast<unsigned long long>(base[t.candidate]) + t.cand_start,
                     t.query_start, t.count};
  }
  if (host_cands.empty()) host_cands.push_back(0);
  // Per call, not kept: a batch is small next to the device, and nothing is left behind when a
  // call fails (each owner frees its buffer as the exception unwinds).
  cuda::DeviceArray<std::uint32_t> d_query(kWhat, std::max<std::size_t>(query_size, 1));
  cuda::DeviceArray<std::uint32_t> d_cands(kWhat, host_cands.size());
  cuda::DeviceArray<DeviceTask> d_tasks(kWhat, host_tasks.size());
  cuda::DeviceArray<unsigned long long> d_out(kWhat, tasks.size());
  std::vector<unsigned long long> host_out(tasks.size(), 0);
  d_query.upload(kWhat, query, query_size);
  d_cands.upload(kWhat, host_cands.data(), host_cands.size());
  d_tasks.upload(kWhat, host_tasks.data(), host_tasks.size());
  d_out.upload(kWhat, host_out.data(), host_out.size());  // the zeros the atomics add to
  // Grid x is limited to 2^31 - 1 blocks: far above any batch. The legacy default stream, as the
  // synchronous copies around it.
  YW_LAUNCH(bit_errors_kernel, static_cast<unsigned int>(tasks.size()), kThreads, cudaStream_t{},
            d_query.get(), d_cands.get(), d_tasks.get(), d_out.get());
  YW_CUDA_CHECK(kWhat, cudaGetLastError());
  d_out.download(kWhat, host_out.data(), host_out.size());
  for (std::size_t i = 0; i < tasks.size(); ++i)
    out[i] = host_out[i];
  return out;
}

}  // namespace yw
