#pragma once
// A small HTTP/1.1 listener for operations endpoints (/metrics, /healthz, /readyz). One thread,
// one request per connection, GET/HEAD only, bounded request size and read time, so a slow or
// hostile client cannot hold the worker. Not a general web server.
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace yw::worker {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse()>;

  // Binds `address` ("host:port"; port 0 picks a free one). Throws yw::Error when it cannot.
  HttpServer(const std::string& address, std::map<std::string, Handler> routes);
  ~HttpServer();  // stops the thread and closes the socket
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;  // the bound port

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace yw::worker
