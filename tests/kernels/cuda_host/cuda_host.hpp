#pragma once
// The test-side controls of the host stand-in runtime (cuda_runtime.h here).
#include <cstddef>
#include <optional>

namespace yw::cuda_host {

// Allocation points passed since the process started (memory, streams, events, FFT plans).
std::size_t allocations();
// Makes the allocation point numbered `index` (as allocations() counts) fail once, with
// cudaErrorMemoryAllocation or CUFFT_ALLOC_FAILED; nullopt disarms.
void fail_allocation(std::optional<std::size_t> index);
// Bytes of device and pinned memory allocated and not yet freed, on every device.
std::size_t bytes_in_use();
// Frees everything allocated while `device` was current, as cudaDeviceReset would; pointers
// into it that are freed later are ignored. Lets a test give each case a fresh device without
// keeping every earlier one's buffers. The twins' runner of that device still holds the freed
// pointers: the device number must not be used again.
void reset_device(int device);
// Makes the next launch on this thread fail with `error` (a sticky error on a real device).
void fail_next_launch(int error);

}  // namespace yw::cuda_host
