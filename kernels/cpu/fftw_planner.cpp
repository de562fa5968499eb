#include "yw/kernels/fftw_planner.hpp"

namespace yw {

std::mutex& fftw_planner_mutex() {
  static std::mutex mutex;
  return mutex;
}

}  // namespace yw
