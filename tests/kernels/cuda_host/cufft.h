// A host stand-in for the part of cuFFT that kernels/cuda/*.cu use (see cuda_runtime.h here):
// 1-D batched R2C and C2R plans with cuFFT's unnormalised conventions, executed by FFTW with the
// same plans as the CPU twins (FFTW_ESTIMATE, one row at a time in aligned buffers), so the
// emulated twin's spectra are the CPU twin's bit for bit. Creating a plan is an allocation point.
#pragma once

#include "cuda_runtime.h"

using cufftComplex = float2;
using cufftReal = float;
using cufftHandle = int;
enum cufftType { CUFFT_R2C = 0x2a, CUFFT_C2R = 0x2c };
enum cufftResult {
  CUFFT_SUCCESS = 0,
  CUFFT_INVALID_PLAN = 1,
  CUFFT_ALLOC_FAILED = 2,
  CUFFT_INVALID_VALUE = 4,
  CUFFT_EXEC_FAILED = 6,
};

inline cufftComplex make_cuFloatComplex(float x, float y) {
  return {x, y};
}

cufftResult cufftPlanMany(cufftHandle* plan, int rank, int* n, int* inembed, int istride, int idist,
                          int* onembed, int ostride, int odist, cufftType type, int batch);
cufftResult cufftSetStream(cufftHandle plan, cudaStream_t stream);
cufftResult cufftDestroy(cufftHandle plan);
cufftResult cufftExecR2C(cufftHandle plan, cufftReal* in, cufftComplex* out);
cufftResult cufftExecC2R(cufftHandle plan, cufftComplex* in, cufftReal* out);
