// kernels/cuda/fingerprint.cu compiled as C++ against the host stand-in runtime (cuda_runtime.h
// here): the very source the `gpu` label runs on a device.
#include "../../../kernels/cuda/fingerprint.cu"
