#pragma once
// A loopback STAND-IN for Supabase Storage, NOT the real server (which cannot run here). It
// answers exactly as real-world.md §2 measured the real storage-api: HTTP 400 for every 4xx
// outcome, the real status as the *string* `statusCode` in the JSON body with its `code`, and
// the bodies of that document's table where it gives them (fields it does not give are left
// out, not invented). Only unknown routes answer HTTP 404, with fastify's own body (numeric
// statusCode). It keeps objects and bucket settings in memory and records every request.
//
// Keys, as the real server judges them (it verifies a JWT against the project's secret):
//   "service-key"     a valid service_role JWT: reads and writes every bucket;
//   "anon-key"        a valid anon JWT: reads public buckets only (a private bucket's objects
//                     answer NoSuchKey, row-level security hiding them), writes nothing (RLS);
//   "expired-key"     a JWT whose exp has passed;
//   any other key with two dots: a JWT signed with another secret;
//   anything else:    not a JWT at all.
// With `gateway` false it plays storage-api reached directly (no /storage/v1 in front): its
// routes have no /storage/v1 prefix, so the worker's requests hit fastify's route-not-found.
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "metadata/loopback_http.hpp"

namespace yw::test {

struct StandInBucket {
  bool is_public = false;
  std::vector<std::string> allowed_mime_types;  // empty: any
  long long file_size_limit = -1;               // -1: none
};

struct StandInObject {
  std::string bytes;
  std::string content_type;
  std::string cache_control;
  std::string user_agent;
};

class SupabaseStandIn {
 public:
  explicit SupabaseStandIn(bool gateway = true);
  std::string url() const { return server_.url(); }

  void add_bucket(const std::string& name, StandInBucket b);
  void put_object(const std::string& bucket_and_path, std::string bytes);
  bool has_object(const std::string& bucket_and_path) const;
  StandInObject object(const std::string& bucket_and_path) const;
  std::vector<std::string> requests() const;  // "METHOD target"
  // Answers the next `n` requests with this HTTP status and body instead (server trouble).
  void fail_next(int n, int http_status, std::string body);

 private:
  HttpResponse on(const HttpRequest& r);
  HttpResponse answer_object_get(const std::string& rest, const std::string& role);
  HttpResponse answer_object_post(const HttpRequest& r, const std::string& rest,
                                  const std::string& role);

  bool gateway_;
  mutable std::mutex mu_;
  std::map<std::string, StandInBucket> buckets_;
  std::map<std::string, StandInObject> objects_;
  std::vector<std::string> log_;
  int fail_count_ = 0;
  int fail_status_ = 0;
  std::string fail_body_;
  LoopbackHttpServer server_;
};

}  // namespace yw::test
