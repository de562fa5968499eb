#include "yw/queue/listener.hpp"

#include <algorithm>
#include <chrono>

#include <pqxx/pqxx>

#include "yw/common/log.hpp"

namespace yw::queue {
namespace {

class Receiver : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, const std::string& channel,
           const Listener::Callback& callback)
      : pqxx::notification_receiver(conn, channel), callback_(callback) {}
  void operator()(const std::string& payload, int /*backend_pid*/) override { callback_(payload); }

 private:
  const Listener::Callback& callback_;
};

void sleep_for(std::stop_token& stop, std::chrono::milliseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!stop.stop_requested() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

}  // namespace

Listener::Listener(std::string url, std::string channel, Callback callback)
    : url_(std::move(url)), channel_(std::move(channel)), callback_(std::move(callback)) {
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

Listener::~Listener() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

void Listener::run(std::stop_token stop) {
  std::chrono::milliseconds backoff(100);
  bool connected_before = false;
  while (!stop.stop_requested()) {
    try {
      pqxx::connection conn(url_);
      Receiver receiver(conn, channel_, callback_);
      // Make sure LISTEN is in place before telling anyone to rely on it.
      conn.get_notifs();
      listening_ = true;
      if (connected_before) {
        ++reconnects_;
        log(LogLevel::info, "queue", "listener reconnected", {field("channel", channel_)});
      }
      connected_before = true;
      backoff = std::chrono::milliseconds(100);
      callback_("");
      while (!stop.stop_requested()) {
        conn.await_notification(0, 200'000);
        if (!conn.is_open()) throw pqxx::broken_connection("listener connection closed");
      }
      listening_ = false;
      return;
    } catch (const std::exception& e) {
      listening_ = false;
      if (stop.stop_requested()) return;
      log(LogLevel::warn, "queue", "listener connection lost; reconnecting",
          {field("error", e.what()), field("backoff_ms", backoff.count())});
      sleep_for(stop, backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
  }
}

}  // namespace yw::queue
