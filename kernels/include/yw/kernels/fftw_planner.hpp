#pragma once
// FFTW's planner (fftwf_plan_*, fftwf_destroy_plan) keeps process-wide state and is not
// thread-safe; executing a plan is. Every stage that plans or destroys plans holds this one lock,
// so fingerprint and separation jobs running side by side never plan at the same time.
#include <mutex>

namespace yw {

std::mutex& fftw_planner_mutex();

}  // namespace yw
