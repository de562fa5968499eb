#pragma once
// One bit-error count of the rescoring (C++17, shared by the CPU twin and the CUDA twin's
// host-only header): items [query_start, query_start + count) of the query against
// [cand_start, cand_start + count) of candidate `candidate`.
#include <cstddef>
#include <cstdint>

namespace yw {

struct BitErrorTask {
  std::uint32_t candidate = 0;
  std::uint32_t cand_start = 0;
  std::uint32_t query_start = 0;
  std::uint32_t count = 0;
};

// A candidate's items in host memory.
struct ItemsView {
  const std::uint32_t* data = nullptr;
  std::size_t size = 0;
};

}  // namespace yw
