// `match_fingerprint`: one fingerprint against the whole catalogue (catalogue.hpp).
// data {record_id (a record in the catalogue) | items (uint32 or signed int32 items) |
//       fingerprint (fpcalc's compressed string); duration_seconds (with items/fingerprint);
//       mode = "full" | "clip" | "both", min_score = 0.4, max_offset_seconds = 9.9 (0 =
//       unlimited), max_duration_diff_seconds = 7 (null = no filter), limit = 10 (at most 100)}
// output {record_id, matches: [{record_id, score, offset_seconds, matched_seconds,
//         bit_error_rate, verdict, mode, votes}], catalogue_version}
// A record is never reported as its own match. An unknown record_id or malformed items fail the
// job terminally; a worker without a catalogue fails it terminally too (retrying cannot help).
#include <fmt/format.h>

#include "yw/common/error.hpp"
#include "yw/kernels/fingerprint.hpp"
#include "yw/worker/catalogue.hpp"
#include "yw/worker/handler.hpp"
#include "yw/worker/job_args.hpp"
#include "yw/worker/match_batcher.hpp"

namespace yw::worker {
namespace {

std::vector<std::uint32_t> items_from_json(const nlohmann::json& v) {
  YW_CHECK_INPUT(v.is_array(), "items: expected an array of integers, got {}", v.type_name());
  std::vector<std::uint32_t> items;
  items.reserve(v.size());
  for (const auto& x : v) {
    YW_CHECK_INPUT(x.is_number_integer(), "items: expected integers, got {}", x.type_name());
    const auto n = x.get<std::int64_t>();
    YW_CHECK_INPUT(n >= -2147483648LL && n <= 4294967295LL,
                   "items: {} is not a 32-bit item (signed or unsigned)", n);
    items.push_back(static_cast<std::uint32_t>(n));
  }
  return items;
}

nlohmann::json match_fingerprint(const nlohmann::json& data, JobContext& ctx) {
  args::require_object(data);
  YW_CHECK(ctx.config != nullptr, "match_fingerprint: no configuration");
  MatchOptions o = match_options_from_json(data, "");
  Catalogue* cat = Catalogue::shared(*ctx.config);
  YW_CHECK_INPUT(cat != nullptr,
                 "match_fingerprint: this worker has no catalogue (YW_CATALOGUE_SCHEMA=off)");
  const RecordId rid = args::record_id(data, false);
  const bool has_items = data.contains("items") && !data["items"].is_null();
  const auto text = args::optional_string(data, "fingerprint");
  const int given = (rid.is_null() ? 0 : 1) + (has_items ? 1 : 0) + (text ? 1 : 0);
  YW_CHECK_INPUT(given == 1, "record_id, items, fingerprint: give exactly one (got {})", given);

  std::vector<std::uint32_t> items;
  double duration = args::optional_number(data, "duration_seconds", 0, 86'400).value_or(0.0);
  nlohmann::json out;
  if (!rid.is_null()) {
    const std::string key = rid.is_string() ? rid.get<std::string>() : rid.dump();
    auto entry = cat->get(key);
    YW_CHECK_INPUT(entry.has_value(), "record_id: {} is not in the catalogue", key);
    items = std::move(entry->items);
    duration = entry->duration_seconds;
    o.exclude = key;
    out["record_id"] = rid;
  } else if (has_items) {
    items = items_from_json(data["items"]);
  } else {
    int algorithm = 0;
    try {
      items = decompress_fingerprint(*text, &algorithm);
    } catch (const InputError& e) {
      throw InputError(fmt::format("fingerprint: {}", e.what()));
    }
    YW_CHECK_INPUT(algorithm == kChromaprintAlgorithm,
                   "fingerprint: algorithm {} (only fpcalc -algorithm 2 is catalogued)", algorithm);
  }
  BatchPolicy policy;
  policy.max_batch = ctx.config->batch_max;
  policy.max_queue_delay = std::chrono::milliseconds(ctx.config->batch_delay_ms);
  out["matches"] = matches_json(cat->match(items, duration, o, bit_error_fn(ctx.device, policy)));
  out["catalogue_version"] = cat->version();
  return out;
}

}  // namespace

void register_match_handlers(HandlerRegistry& registry) {
  registry.add("match_fingerprint", &match_fingerprint);
}

}  // namespace yw::worker
