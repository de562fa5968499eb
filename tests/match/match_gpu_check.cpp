// The device check's rescoring run (scripts/gpu-check.sh carries it to a lent GPU): one
// catalogue-like candidate × offset batch, counted by the CPU twin (bit_errors_batch_cpu) and the
// CUDA twin (bit_errors_batch_cuda); prints one `key value` line per measurement, which the
// script turns into its closing table.
//
// The batch is what MatchBatcher hands the device: the items of many concurrent queries
// concatenated into one query array, and per query the candidates its index proposed, each at
// a few offsets around the voted one (compare2's overlap: a_start = max(offset, 0), b_start =
// max(-offset, 0), an even count). Records are synthetic songs with real item statistics
// (synthetic.hpp, ~120 s = 948 items with a spread of lengths); every query is a re-encode
// (bit error rate 2-10 %) of one record, which is among its candidates, the rest are other
// records. The seed is printed; --seed replays it.
//
// Exit codes: 0 twins equal, 1 a count differs, 2 bad usage, 3 no CUDA device (prints
// `device none (...)`, as yw_gpu_check_bench does). Links only the core, the CUDA twins and the
// CUDA runtime (no worker, database or decoder), so it runs in the bare device bundle.
//
//   yw_match_gpu_check [--records N] [--queries N] [--candidates N] [--offsets N] [--reps N]
//                      [--seed S] [--cpu-only]
// --cpu-only builds the same batch and times the CPU twin alone, without asking for a device
// (checks the batch on a machine without a GPU).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "match/synthetic.hpp"
#include "yw/kernels/cuda/fingerprint_match_cuda.hpp"
#include "yw/kernels/device.hpp"
#include "yw/kernels/fingerprint_match.hpp"

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The best of `reps` wall times of f() (the first CUDA call also pays for context creation,
// so it is run once before timing).
template <class F>
double best_seconds(int reps, F&& f) {
  double best = 1e300;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now();
    f();
    best = std::min(best, now() - t0);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t records = 4000, queries = 128, candidates = 48, offsets = 5;
  int reps = 3;
  bool cpu_only = false;
  std::uint64_t seed = std::random_device{}();
  for (int i = 1; i < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--cpu-only") {
      cpu_only = true;
      --i;
      continue;
    }
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--records") {
      records = std::strtoull(v, nullptr, 10);
    } else if (a == "--queries") {
      queries = std::strtoull(v, nullptr, 10);
    } else if (a == "--candidates") {
      candidates = std::strtoull(v, nullptr, 10);
    } else if (a == "--offsets") {
      offsets = std::strtoull(v, nullptr, 10);
    } else if (a == "--reps") {
      reps = std::atoi(v);
    } else if (a == "--seed") {
      seed = std::strtoull(v, nullptr, 10);
    } else {
      std::fprintf(stderr,
                   "usage: yw_match_gpu_check [--records N] [--queries N] [--candidates N] "
                   "[--offsets N] [--reps N] [--seed S] [--cpu-only]\n");
      return 2;
    }
  }
  if (records < 2 || queries < 1 || candidates < 1 || candidates > records || offsets < 1 ||
      reps < 1) {
    std::fprintf(stderr,
                 "yw_match_gpu_check: need records >= 2, candidates <= records, "
                 "queries, offsets and reps >= 1\n");
    return 2;
  }
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  if (!cpu_only) {
    const auto inv = yw::cuda_inventory();
    if (inv.count == 0) {
      std::printf("device none (%s)\n", inv.reason.c_str());
      return 3;
    }
    std::printf("device %s\n", inv.describe(0).c_str());
  }

  // ---- the catalogue and the batch
  yw::test::SyntheticFingerprints gen(seed);
  auto& rng = gen.rng();
  std::vector<std::vector<std::uint32_t>> store(records);
  for (auto& s : store)
    s = gen.song(600 + rng() % 700);  // 74-161 s
  std::vector<std::uint32_t> query;   // every query's items, concatenated (as the batcher does)
  std::vector<std::span<const std::uint32_t>> cand_spans;
  std::vector<yw::ItemsView> cand_views;
  std::vector<yw::BitErrorTask> tasks;
  std::uint64_t pair_items = 0;
  for (std::size_t q = 0; q < queries; ++q) {
    const std::size_t source = rng() % records;
    const auto items =
        gen.degrade(store[source], 0.02 + 0.08 * static_cast<double>(rng() % 100) / 100.0);
    const std::size_t q_start = query.size();
    query.insert(query.end(), items.begin(), items.end());
    for (std::size_t c = 0; c < candidates; ++c) {
      const std::size_t rec = c == 0 ? source : rng() % records;
      const auto ci = static_cast<std::uint32_t>(cand_spans.size());
      cand_spans.emplace_back(store[rec]);
      cand_views.push_back({store[rec].data(), store[rec].size()});
      const int voted = static_cast<int>(rng() % 161) - yw::kAcoustidMaxOffset;
      for (std::size_t o = 0; o < offsets; ++o) {
        const int off = std::clamp(voted + static_cast<int>(o) - static_cast<int>(offsets / 2),
                                   -yw::kAcoustidMaxOffset, yw::kAcoustidMaxOffset);
        const std::size_t a_start = static_cast<std::size_t>(std::max(off, 0));
        const std::size_t b_start = static_cast<std::size_t>(std::max(-off, 0));
        const std::size_t a_len = store[rec].size() > a_start ? store[rec].size() - a_start : 0;
        const std::size_t b_len = items.size() > b_start ? items.size() - b_start : 0;
        const auto count = static_cast<std::uint32_t>(std::min(a_len, b_len) & ~std::size_t{1});
        tasks.push_back({ci, static_cast<std::uint32_t>(a_start),
                         static_cast<std::uint32_t>(q_start + b_start), count});
        pair_items += count;
      }
    }
  }
  yw::check_bit_error_tasks(query.size(), cand_spans, tasks);
  std::printf("match_records %zu\nmatch_queries %zu\nmatch_tasks %zu\nmatch_candidate_items %llu\n",
              records, queries, tasks.size(), static_cast<unsigned long long>(pair_items));

  // ---- the twins
  std::vector<std::uint64_t> cpu, gpu;
  const double cpu_s =
      best_seconds(reps, [&] { cpu = yw::bit_errors_batch_cpu(query, cand_spans, tasks); });
  const double n_tasks = static_cast<double>(tasks.size());
  const double n_items = static_cast<double>(pair_items);
  if (cpu_only) {
    std::printf("match_cpu_seconds %.6f\nmatch_cpu_tasks_per_s %.0f\nmatch_cpu_items_per_s %.0f\n",
                cpu_s, n_tasks / cpu_s, n_items / cpu_s);
    return 0;
  }
  gpu = yw::bit_errors_batch_cuda(query.data(), query.size(), cand_views, tasks, 0);  // warm-up
  const double gpu_s = best_seconds(reps, [&] {
    gpu = yw::bit_errors_batch_cuda(query.data(), query.size(), cand_views, tasks, 0);
  });
  std::size_t differing = 0;
  for (std::size_t i = 0; i < tasks.size(); ++i)
    differing += gpu.size() != cpu.size() || gpu[i] != cpu[i];
  // Equal counts of an all-zero batch would prove nothing: the total is reported too.
  std::uint64_t total = 0;
  for (const auto n : cpu)
    total += n;
  std::printf("match_bit_errors_total %llu\nmatch_differing_tasks %zu\n",
              static_cast<unsigned long long>(total), differing);
  std::printf("match_cpu_seconds %.6f\nmatch_gpu_seconds %.6f\n", cpu_s, gpu_s);
  std::printf("match_cpu_tasks_per_s %.0f\nmatch_gpu_tasks_per_s %.0f\n", n_tasks / cpu_s,
              n_tasks / gpu_s);
  std::printf("match_cpu_items_per_s %.0f\nmatch_gpu_items_per_s %.0f\n", n_items / cpu_s,
              n_items / gpu_s);
  std::printf("match_gpu_over_cpu %.2f\n", cpu_s / gpu_s);
  std::printf("match_equal %s\n", differing == 0 && gpu.size() == cpu.size() ? "yes" : "NO");
  return differing == 0 && gpu.size() == cpu.size() ? 0 : 1;
}
