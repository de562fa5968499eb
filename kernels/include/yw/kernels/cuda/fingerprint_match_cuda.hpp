#pragma once
// The CUDA twin of bit_errors_batch_cpu (yw/kernels/fingerprint_match.hpp): the same tasks, the
// same integers (popcount sums are exact, so GPU results equal CPU results, not approximately).
// Host-only header, C++17: no CUDA types, so CPU code can name it.
//
// One call uploads the query and the candidates its tasks name (each once, concatenated), runs
// one block per task (threads stride over the task's items, __popc of the XOR, warp sums) and
// downloads one count per task. The worker's MatchBatcher merges the tasks of concurrent
// queries into one call. The caller checks the tasks against the arrays first
// (check_bit_error_tasks); the worker's batcher does.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "yw/kernels/fingerprint_match_task.hpp"

namespace yw {

std::vector<std::uint64_t> bit_errors_batch_cuda(const std::uint32_t* query, std::size_t query_size,
                                                 const std::vector<ItemsView>& candidates,
                                                 const std::vector<BitErrorTask>& tasks,
                                                 int device);

}  // namespace yw
