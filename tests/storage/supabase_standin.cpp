#include "storage/supabase_standin.hpp"

#include <algorithm>

namespace yw::test {
namespace {

HttpResponse json_answer(int http_status, std::string body) {
  HttpResponse res;
  res.status = http_status;
  res.headers = {{"Content-Type", "application/json; charset=utf-8"}};
  res.body = std::move(body);
  return res;
}

// Every 4xx outcome: HTTP 400, the real status as a string in the body.
HttpResponse storage_error(const std::string& body) {
  return json_answer(400, body);
}

std::string decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool ascii(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

const char* kSignature =
    R"({"statusCode":"403","error":"Unauthorized","message":"signature verification failed","code":"AccessDenied"})";
const char* kExpired = R"({"statusCode":"403","message":"\"exp\" claim timestamp check failed"})";
const char* kNotJwt = R"({"statusCode":"403","message":"Invalid Compact JWS"})";
const char* kRls = R"({"statusCode":"403","message":"new row violates row-level security policy"})";
const char* kNoSuchKey =
    R"({"statusCode":"404","error":"not_found","message":"Object not found","code":"NoSuchKey"})";
const char* kNoSuchBucket = R"({"statusCode":"404","code":"NoSuchBucket"})";
const char* kMime = R"({"statusCode":"415","code":"InvalidMimeType"})";
const char* kTooLarge = R"({"statusCode":"413","code":"EntityTooLarge"})";
const char* kInvalidKey = R"({"statusCode":"400","code":"InvalidKey"})";

}  // namespace

SupabaseStandIn::SupabaseStandIn(bool gateway)
    : gateway_(gateway), server_([this](const HttpRequest& r) { return on(r); }) {}

void SupabaseStandIn::add_bucket(const std::string& name, StandInBucket b) {
  std::lock_guard lock(mu_);
  buckets_[name] = std::move(b);
}

void SupabaseStandIn::put_object(const std::string& bucket_and_path, std::string bytes) {
  std::lock_guard lock(mu_);
  objects_[bucket_and_path].bytes = std::move(bytes);
}

bool SupabaseStandIn::has_object(const std::string& bucket_and_path) const {
  std::lock_guard lock(mu_);
  return objects_.contains(bucket_and_path);
}

StandInObject SupabaseStandIn::object(const std::string& bucket_and_path) const {
  std::lock_guard lock(mu_);
  return objects_.at(bucket_and_path);
}

std::vector<std::string> SupabaseStandIn::requests() const {
  std::lock_guard lock(mu_);
  return log_;
}

void SupabaseStandIn::fail_next(int n, int http_status, std::string body) {
  std::lock_guard lock(mu_);
  fail_count_ = n;
  fail_status_ = http_status;
  fail_body_ = std::move(body);
}

HttpResponse SupabaseStandIn::on(const HttpRequest& r) {
  std::lock_guard lock(mu_);
  log_.push_back(r.method + " " + r.target);
  if (fail_count_ > 0) {
    --fail_count_;
    return json_answer(fail_status_, fail_body_);
  }
  std::string path = r.target;
  if (gateway_) {
    if (!path.starts_with("/storage/v1/")) path = "/unrouted" + path;
    path = path.substr(std::string("/storage/v1").size());
  }
  const bool object_get = r.method == "GET" && path.starts_with("/object/authenticated/");
  const bool object_post = r.method == "POST" && path.starts_with("/object/");
  const bool bucket_get = r.method == "GET" && path.starts_with("/bucket/");
  if (!object_get && !object_post && !bucket_get) {
    return json_answer(404, R"({"message":"Route )" + r.method + ":" + r.target +
                                R"( not found","error":"Not Found","statusCode":404})");
  }
  // The key: the real server verifies the JWT in Authorization against the project's secret.
  const std::string auth = r.header("authorization");
  const std::string key = auth.starts_with("Bearer ") ? auth.substr(7) : std::string();
  std::string role;
  if (key == "service-key") {
    role = "service_role";
  } else if (key == "anon-key") {
    role = "anon";
  } else if (key == "expired-key") {
    return storage_error(kExpired);
  } else if (std::count(key.begin(), key.end(), '.') == 2) {
    return storage_error(kSignature);
  } else {
    return storage_error(kNotJwt);
  }
  if (bucket_get) {
    const auto it = buckets_.find(decode(path.substr(std::string("/bucket/").size())));
    if (it == buckets_.end() || role != "service_role") {
      return storage_error(R"({"statusCode":"404","code":"NoSuchBucket"})");
    }
    return json_answer(
        200, R"({"id":")" + it->first + R"(","name":")" + it->first + R"(","public":)" +
                 (it->second.is_public ? "true" : "false") + R"(,"file_size_limit":)" +
                 (it->second.file_size_limit >= 0 ? std::to_string(it->second.file_size_limit)
                                                  : std::string("null")) +
                 "}");
  }
  if (object_get)
    return answer_object_get(path.substr(std::string("/object/authenticated/").size()), role);
  return answer_object_post(r, path.substr(std::string("/object/").size()), role);
}

HttpResponse SupabaseStandIn::answer_object_get(const std::string& rest, const std::string& role) {
  const std::string name = decode(rest);
  if (!ascii(name)) return storage_error(kInvalidKey);
  const auto slash = name.find('/');
  const auto bucket = buckets_.find(name.substr(0, slash));
  if (bucket == buckets_.end()) return storage_error(kNoSuchBucket);
  // Row-level security hides a private bucket's rows from anon: the object looks missing.
  if (role == "anon" && !bucket->second.is_public) return storage_error(kNoSuchKey);
  const auto it = objects_.find(name);
  if (it == objects_.end()) return storage_error(kNoSuchKey);
  HttpResponse res;
  res.headers = {{"Content-Type", "audio/wav"}};
  res.body = it->second.bytes;
  return res;
}

HttpResponse SupabaseStandIn::answer_object_post(const HttpRequest& r, const std::string& rest,
                                                 const std::string& role) {
  const std::string name = decode(rest);
  if (!ascii(name)) return storage_error(kInvalidKey);
  const auto slash = name.find('/');
  const auto bucket = buckets_.find(name.substr(0, slash));
  if (role == "anon") return storage_error(kRls);
  if (bucket == buckets_.end()) return storage_error(kNoSuchBucket);
  const std::string type = r.header("content-type");
  const auto& allowed = bucket->second.allowed_mime_types;
  if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), type) == allowed.end()) {
    return storage_error(kMime);
  }
  if (bucket->second.file_size_limit >= 0 &&
      static_cast<long long>(r.body.size()) > bucket->second.file_size_limit) {
    return storage_error(kTooLarge);
  }
  if (objects_.contains(name) && r.header("x-upsert") != "true") {
    // Not in real-world.md's table (the worker always sends x-upsert): status and code only.
    return storage_error(R"({"statusCode":"409","code":"Duplicate"})");
  }
  auto& o = objects_[name];
  o.bytes = r.body;
  o.content_type = type;
  o.cache_control = r.header("cache-control");
  o.user_agent = r.header("user-agent");
  return json_answer(200, R"({"Key":")" + name + R"("})");
}

}  // namespace yw::test
