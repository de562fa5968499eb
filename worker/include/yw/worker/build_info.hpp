#pragma once
#include <string>

namespace yw::worker {

struct BuildInfo {
  std::string version;           // project version
  bool cuda = false;             // CUDA twins compiled in
  bool torch = false;            // TorchScript runner compiled in
  std::string pgboss;            // pg-boss release and schema version spoken
  std::string describe() const;  // "0.1.0 (CUDA on, torch on, pg-boss 12.38.0 schema 46)"
};

const BuildInfo& build_info();

}  // namespace yw::worker
