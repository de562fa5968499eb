// Classification of Supabase Storage answers (real-world.md §2; the table is in the header).
#include "yw/worker/supabase_errors.hpp"

#include <charconv>
#include <map>
#include <mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "yw/common/log.hpp"
#include "yw/common/readiness.hpp"

namespace yw::worker {
namespace {

using SteadyTime = std::chrono::steady_clock;

// The holds of storage_claim_hold, one per operation, kept beside the readiness reasons they
// mirror (a hold exists exactly while its reason is set).
struct HoldState {
  std::string bucket;
  std::string message;  // the fault, as its readiness reason says it
  long baseline_status = 0;
  std::string baseline_body;
  SteadyTime::time_point last_trial;
};
struct Holds {
  std::mutex mutex;
  std::map<SupabaseRequest::Op, HoldState> by_op;
};
Holds& holds() {
  static Holds* h = new Holds();  // never destroyed: fetch loops may ask during exit
  return *h;
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

std::string printable(std::string_view text) {
  std::string out;
  for (char ch : text.substr(0, 200))
    out.push_back(std::isprint(static_cast<unsigned char>(ch)) != 0 ? ch : ' ');
  return out;
}

// "403 AccessDenied: signature verification failed", as the answer is quoted in messages.
std::string quoted(const SupabaseAnswer& a) {
  std::string out = std::to_string(a.status);
  if (!a.code.empty()) out += " " + a.code;
  if (!a.message.empty()) out += ": " + printable(a.message);
  return out;
}

StorageVerdict deployment(std::string message) {
  return {StorageFault::deployment, std::move(message)};
}

// 401/403: the key. The messages are storage-api's own (real-world.md §2).
StorageVerdict key_refused(const SupabaseRequest& r, const SupabaseAnswer& a) {
  const std::string answered = fmt::format("storage answered {} for '{}'", quoted(a), r.object);
  if (contains(a.message, "row-level security")) {
    return deployment(fmt::format(
        "{}: the key in {} may not {} bucket '{}' (row-level security); set "
        "SUPABASE_SERVICE_ROLE_KEY to the project's service_role key",
        answered, r.key_name, r.op == SupabaseRequest::Op::upload ? "write to" : "read", r.bucket));
  }
  if (contains(a.message, "\"exp\" claim")) {
    return deployment(
        fmt::format("{}: the key in {} has expired; set a current key", answered, r.key_name));
  }
  if (contains(a.message, "signature verification failed")) {
    return deployment(fmt::format(
        "{}: the key in {} was signed with another JWT secret (another project's key?); copy the "
        "key of the project at {}",
        answered, r.key_name, r.base_url));
  }
  if (contains(a.message, "Invalid Compact JWS")) {
    return deployment(
        fmt::format("{}: the key in {} is not a JWT; set the project's service_role key (a JWT)",
                    answered, r.key_name));
  }
  return deployment(
      fmt::format("{}: storage refused the key in {}; check it", answered, r.key_name));
}

}  // namespace

SupabaseAnswer parse_supabase_answer(long http_status, std::string_view body) {
  SupabaseAnswer a;
  a.http_status = http_status;
  a.status = http_status;
  const auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    a.message = std::string(body.substr(0, 200));
    return a;
  }
  const auto text = [&](const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  a.code = text("code");
  a.error = text("error");
  a.message = text("message");
  if (const auto it = j.find("statusCode"); it != j.end()) {
    if (it->is_number_integer()) {
      a.status = it->get<long>();
    } else if (it->is_string()) {
      const std::string s = it->get<std::string>();
      long v = 0;
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec == std::errc() && end == s.data() + s.size()) a.status = v;
    }
  }
  return a;
}

StorageVerdict classify_supabase(const SupabaseRequest& r, const SupabaseAnswer& a) {
  const bool upload = r.op == SupabaseRequest::Op::upload;
  // fastify's "Route GET:/storage/v1/... not found": SUPABASE_URL names storage-api itself (or
  // some other server), not the project gateway that serves /storage/v1.
  if (a.http_status == 404 && a.message.starts_with("Route ")) {
    return deployment(fmt::format(
        "storage answered HTTP 404 '{}' for '{}': SUPABASE_URL={} does not serve /storage/v1; set "
        "it to the project URL (https://<project>.supabase.co or the gateway in front of "
        "storage-api)",
        printable(a.message), r.object, r.base_url));
  }
  if (a.status == 401 || a.status == 403) return key_refused(r, a);
  if (a.status >= 500 || a.status == 429 || a.status == 408) {
    return {StorageFault::transient,
            fmt::format("storage answered {} for '{}'; retrying later", quoted(a), r.object)};
  }
  if (a.status == 404) {
    if (upload) {
      return deployment(fmt::format(
          "storage answered {} for '{}': the output bucket '{}' does not exist; create it or "
          "change YW_OUTPUT_URI",
          quoted(a), r.object, r.bucket));
    }
    // With the anon key, row-level security hides a private bucket's objects: they answer
    // exactly like missing ones.
    return {StorageFault::input,
            fmt::format("audio: '{}' not found (storage answered {}){}", r.object, quoted(a),
                        r.key_name == "SUPABASE_ANON_KEY"
                            ? "; with SUPABASE_ANON_KEY a private bucket's objects also look "
                              "missing (set SUPABASE_SERVICE_ROLE_KEY)"
                            : "")};
  }
  if (a.status == 415 || a.code == "InvalidMimeType") {
    return deployment(fmt::format(
        "storage answered {} for '{}': bucket '{}' does not accept {}; add it to the bucket's "
        "allowed_mime_types",
        quoted(a), r.object, r.bucket, r.mime_type.empty() ? "this type" : r.mime_type));
  }
  if (a.status == 413 || a.code == "EntityTooLarge") {
    return deployment(
        fmt::format("storage answered {} for '{}': the artifact is {} bytes, over bucket '{}''s "
                    "file_size_limit{}; raise the bucket's limit",
                    quoted(a), r.object, r.bytes, r.bucket,
                    r.bucket_size_limit >= 0 ? fmt::format(" of {} bytes", r.bucket_size_limit)
                                             : std::string()));
  }
  if (a.status == 400 && a.code == "InvalidKey") {
    return {StorageFault::input,
            fmt::format("{}: '{}' is not a valid storage key (storage answered {})",
                        upload ? "artifact" : "audio", r.object, quoted(a))};
  }
  if (upload) {
    // An upload refused for another reason is about our storage, not the job's input.
    return {StorageFault::transient,
            fmt::format("storage answered {} for upload of '{}'", quoted(a), r.object)};
  }
  if (a.status >= 400 && a.status < 500) {
    return {StorageFault::input,
            fmt::format("audio: '{}' cannot be read (storage answered {})", r.object, quoted(a))};
  }
  return {StorageFault::transient,
          fmt::format("storage answered {} for '{}'", quoted(a), r.object)};
}

void throw_storage_verdict(const SupabaseRequest& r, const StorageVerdict& v) {
  switch (v.fault) {
    case StorageFault::deployment: {
      const auto name =
          r.op == SupabaseRequest::Op::upload ? kReadinessStorageUpload : kReadinessStorageDownload;
      Readiness::global().set(name, v.message);
      bool fresh = false;
      {
        Holds& h = holds();
        std::lock_guard lock(h.mutex);
        auto [it, added] = h.by_op.try_emplace(r.op);
        fresh = added || it->second.bucket != r.bucket;
        if (fresh) {
          it->second = HoldState{};
          it->second.bucket = r.bucket;
        }
        it->second.message = v.message;
        it->second.last_trial = SteadyTime::now();  // after a failed trial: a full interval
      }
      // Once per episode: the jobs in flight when it began fail with the same fault.
      if (fresh) log(LogLevel::error, "storage", fmt::format("misconfigured: {}", v.message));
      throw StorageConfigError(v.message, __FILE__, __LINE__);
    }
    case StorageFault::input:
      throw InputError(v.message, __FILE__, __LINE__);
    case StorageFault::transient:
      break;
  }
  throw Error(v.message, ErrorKind::transient, __FILE__, __LINE__);
}

void storage_request_worked(SupabaseRequest::Op op) {
  {
    Holds& h = holds();
    std::lock_guard lock(h.mutex);
    h.by_op.erase(op);
  }
  Readiness::global().clear(op == SupabaseRequest::Op::upload ? kReadinessStorageUpload
                                                              : kReadinessStorageDownload);
}

std::string storage_claim_hold(bool uploads) {
  Holds& h = holds();
  std::lock_guard lock(h.mutex);
  const auto now = SteadyTime::now();
  std::vector<HoldState*> due;
  for (auto& [op, hold] : h.by_op) {
    if (op == SupabaseRequest::Op::upload && !uploads) continue;
    if (now - hold.last_trial >= kStorageTrialInterval) {
      due.push_back(&hold);
      continue;
    }
    return hold.message;
  }
  for (HoldState* d : due)
    d->last_trial = now;
  return {};
}

std::vector<StorageHold> storage_holds() {
  Holds& h = holds();
  std::lock_guard lock(h.mutex);
  std::vector<StorageHold> out;
  for (const auto& [op, hold] : h.by_op)
    out.push_back({op, hold.bucket, hold.baseline_status, hold.baseline_body});
  return out;
}

void set_storage_hold_baseline(SupabaseRequest::Op op, long status, std::string body) {
  Holds& h = holds();
  std::lock_guard lock(h.mutex);
  const auto it = h.by_op.find(op);
  if (it == h.by_op.end() || it->second.baseline_status != 0) return;
  it->second.baseline_status = status;
  it->second.baseline_body = std::move(body);
}

}  // namespace yw::worker
