// The record handlers land with their issue; until then this build registers none, so `run`
// does not serve their queues.
#include "yw/worker/handler.hpp"

namespace yw::worker {

void register_record_handlers(HandlerRegistry& /*registry*/) {}

}  // namespace yw::worker
