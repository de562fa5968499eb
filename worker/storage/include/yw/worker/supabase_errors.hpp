#pragma once
// Supabase Storage's error answers and what they mean for a job (real-world.md §2). Every error
// class of the Supabase client is here, so one file says how each answer is treated.
//
// storage-api answers HTTP 400 for every 4xx outcome and puts the real status in the JSON body as
// the *string* `statusCode`, with a `code` ("AccessDenied", "NoSuchKey", ...). Only 5xx, 429 (too
// many connections), 544 (database timeout), 416 and unknown routes (HTTP 404, fastify's own body
// with a numeric statusCode) use other HTTP statuses. So an answer is classified by the body's
// statusCode and code first and the HTTP status only when the body has none.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "yw/common/error.hpp"

namespace yw::worker {

// Whose fault a storage answer is.
enum class StorageFault {
  transient,   // the server's trouble (5xx, 429, 544, timeouts): retry the job later
  input,       // the job's input (a missing object or bucket, an invalid key): terminal
  deployment,  // this worker's configuration (key, permissions, bucket settings, SUPABASE_URL):
               // the job is retried, /readyz turns 503 and the log says what to fix
};

// The JSON error body as storage-api sends it.
struct SupabaseAnswer {
  long http_status = 0;
  long status = 0;    // the body's statusCode when it has one, else http_status
  std::string code;   // "AccessDenied", "NoSuchKey", "NoSuchBucket", "InvalidMimeType", ...
  std::string error;  // "Unauthorized", "not_found", ...
  std::string message;
};
SupabaseAnswer parse_supabase_answer(long http_status, std::string_view body);

// What the worker was doing when storage answered, for the classification and its message.
struct SupabaseRequest {
  enum class Op { download, upload } op = Op::download;
  std::string object;     // supabase://bucket/path, as messages name it
  std::string bucket;     //
  std::string key_name;   // the variable whose key was sent: SUPABASE_SERVICE_ROLE_KEY or _ANON_KEY
  std::string base_url;   // SUPABASE_URL as configured
  std::string mime_type;  // uploads: the Content-Type sent
  std::uint64_t bytes = 0;           // uploads: the object's size
  long long bucket_size_limit = -1;  // uploads: the bucket's file_size_limit when known
};

struct StorageVerdict {
  StorageFault fault = StorageFault::transient;
  // One line. Input faults: what is wrong with the job's object, naming its URI. Deployment
  // faults: what is wrong and what to change. Transient: the answer, quoted.
  std::string message;
};

// Classifies a non-2xx answer (the table of real-world.md §2).
StorageVerdict classify_supabase(const SupabaseRequest& request, const SupabaseAnswer& answer);

// Thrown for deployment faults: retryable (the job is not at fault, another attempt after the fix
// succeeds). The message is the one-line fix.
class StorageConfigError : public Error {
 public:
  explicit StorageConfigError(std::string message, const char* file = nullptr, int line = 0)
      : Error(std::move(message), ErrorKind::transient, file, line) {}
};

// The readiness reasons storage sets while a deployment fault lasts (cleared by the next
// successful request of the same kind).
inline constexpr std::string_view kReadinessStorageDownload = "storage.download";
inline constexpr std::string_view kReadinessStorageUpload = "storage.upload";

// Throws the exception `verdict` calls for (StorageConfigError, InputError or Error), setting
// the readiness reason and logging the fix once per episode (until the fault is cleared, or
// moves to another bucket) for deployment faults.
[[noreturn]] void throw_storage_verdict(const SupabaseRequest& request,
                                        const StorageVerdict& verdict);
// Clears the readiness reason of `op` after a request that worked.
void storage_request_worked(SupabaseRequest::Op op);

// Claims of the queues that use storage wait while a deployment fault lasts, so jobs do not spend
// their retries on a fault that is not theirs: only the jobs in flight when it appears spend one.
// The hold ends when probe_storage (storage.hpp) sees the fault's bucket answer differently, or
// for one claim every kStorageTrialInterval, so that a fault the probe cannot see (anon keys
// cannot read bucket rows) is still tried again by a real job.
inline constexpr std::chrono::seconds kStorageProbeInterval{5};
inline constexpr std::chrono::seconds kStorageTrialInterval{60};

// The fault that holds claims for a queue that downloads (and, with `uploads`, one that uploads
// too); empty when a claim may go ahead. Thread-safe; each trial is handed to one caller.
std::string storage_claim_hold(bool uploads);

// A fault that holds claims, as the probe sees it: which bucket, and what a GET of that bucket
// answered when the probe first looked (status 0 before it has looked).
struct StorageHold {
  SupabaseRequest::Op op = SupabaseRequest::Op::download;
  std::string bucket;
  long baseline_status = 0;
  std::string baseline_body;
};
std::vector<StorageHold> storage_holds();
// The probe's first look at a hold's bucket; later answers are compared with it.
void set_storage_hold_baseline(SupabaseRequest::Op op, long status, std::string body);

}  // namespace yw::worker
