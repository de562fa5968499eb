#pragma once
// Compute devices, chosen at run time (style.md habit 3). This header is host-only: it never
// includes CUDA headers, so CPU-only code can name devices.
#include <string>
#include <string_view>
#include <vector>

namespace yw {

struct Device {
  enum class Kind { cpu, cuda };
  Kind kind = Kind::cpu;
  int index = 0;  // CUDA ordinal; 0 for the CPU

  bool is_cuda() const noexcept { return kind == Kind::cuda; }
  std::string to_string() const;
  // Spelled out: this header is also compiled by nvcc in C++17 mode.
  bool operator==(const Device& o) const noexcept { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const noexcept { return !(*this == o); }
};

// What the user asked for: `auto`, `cpu` or `cuda:N` (`cuda` means `cuda:0`).
struct DeviceRequest {
  bool is_auto = true;
  Device device;
  std::string to_string() const;
};

// Parses a --device / YW_DEVICE value. Throws yw::ConfigError naming the value when malformed.
DeviceRequest parse_device(std::string_view text);

// Facts about the CUDA devices this process can use. With no CUDA build, no driver or no device
// `count` is 0 and `reason` says why (for the startup log and the `cuda:N` error).
struct CudaInventory {
  bool compiled_in = false;  // this binary has the CUDA twins
  int count = 0;
  std::string reason;
  std::vector<std::string> devices;       // per ordinal: "NVIDIA H200 (sm_90, 139 GiB)"
  std::string describe(int index) const;  // devices[index], or "" when unknown
};

// Queries the CUDA runtime once per call; never throws. Implemented by kernels/cuda/device.cu
// in a CUDA build and by kernels/cpu/device_nocuda.cpp otherwise (the only two definitions, so
// yw_kernels itself never refers to either).
CudaInventory cuda_inventory() noexcept;

// Resolves a request against the inventory: `auto` picks cuda:0 when one is usable, else the CPU;
// `cuda:N` with no such usable device throws yw::ConfigError (a broken GPU node must fail loudly).
Device resolve_device(const DeviceRequest& request, const CudaInventory& inventory);

}  // namespace yw
