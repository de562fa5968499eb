#include <stdexcept>

#include <fmt/format.h>

#include "yw/worker/handler.hpp"

namespace yw::worker {

void HandlerRegistry::add(std::string queue, HandlerFn handler) {
  if (handlers_.contains(queue)) {
    throw std::logic_error(fmt::format("handler for queue '{}' registered twice", queue));
  }
  handlers_.emplace(std::move(queue), std::move(handler));
}

const HandlerFn* HandlerRegistry::find(std::string_view queue) const {
  const auto it = handlers_.find(queue);
  return it == handlers_.end() ? nullptr : &it->second;
}

std::vector<std::string> HandlerRegistry::queues() const {
  std::vector<std::string> out;
  for (const auto& [q, h] : handlers_)
    out.push_back(q);
  return out;
}

void register_all_handlers(HandlerRegistry& registry) {
  register_record_handlers(registry);
  register_match_handlers(registry);
  register_metadata_handlers(registry);
  register_fingerprint_handlers(registry);
  register_separation_handlers(registry);
}

}  // namespace yw::worker
