// Any byte string as job data or configuration text must parse or throw yw::InputError /
// yw::ConfigError (nlohmann's parse errors are caught where the executor catches them), never
// crash or throw anything else.
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "yw/common/error.hpp"
#include "yw/kernels/device.hpp"
#include "yw/worker/config.hpp"
#include "yw/worker/job_args.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_discarded()) {
    try {
      yw::worker::FingerprintArgs::from_json(json);
    } catch (const yw::InputError&) {
    }
    try {
      yw::worker::SeparateArgs::from_json(json);
    } catch (const yw::InputError&) {
    }
    try {
      yw::worker::MetadataArgs::from_json(json);
    } catch (const yw::InputError&) {
    }
    try {
      yw::worker::RecordArgs::from_json(json);
    } catch (const yw::InputError&) {
    }
  }
  try {
    yw::worker::parse_dotenv(text);
  } catch (const yw::ConfigError&) {
  }
  try {
    yw::worker::parse_database_url(text);
  } catch (const yw::ConfigError&) {
  }
  try {
    yw::parse_device(text);
  } catch (const yw::ConfigError&) {
  }
  (void)yw::worker::mask_secrets(text);
  return 0;
}
