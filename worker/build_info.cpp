#include "yw/worker/build_info.hpp"

#include <fmt/format.h>

#include "yw/queue/schema.hpp"

namespace yw::worker {

std::string BuildInfo::describe() const {
  return fmt::format("{} (CUDA {}, torch {}, {})", version, cuda ? "on" : "off",
                     torch ? "on" : "off", pgboss);
}

const BuildInfo& build_info() {
  static const BuildInfo info{
      YW_VERSION, YW_BUILD_CUDA != 0, YW_BUILD_TORCH != 0,
      fmt::format("pg-boss {} schema {}", queue::kPgBossRelease, queue::kSupportedPgBossSchema)};
  return info;
}

}  // namespace yw::worker
