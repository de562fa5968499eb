#pragma once
// A bounded pool of libpqxx connections (design.md §6: each worker's connections are bounded).
// Thread-safe. A lease is exclusive until it is destroyed. Connections found broken are dropped
// and replaced on the next lease, so a restarted server heals the pool without a restart of ours.
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/pqxx>

namespace yw::queue {

struct PoolConfig {
  std::string url;   // libpq URI or key=value conninfo
  int max_size = 4;  // connections open at once, leased or idle
  std::chrono::milliseconds acquire_timeout{30'000};
  std::string application_name = "yesod-worker";
  // Named prepared statements (planned once per connection). Off behind a transaction-mode
  // pooler, whose server connections change between transactions.
  bool named_statements = true;
  // Logged when no connection is free within acquire_timeout ("fetch/settle pool of ...").
  std::string name = "database";
};

// How the server at a URL keeps session state between transactions.
enum class PoolerMode {
  session,      // PostgreSQL itself or a session-mode pooler: a connection is one backend
  transaction,  // a transaction- (or statement-) mode pooler: each transaction may get another
};

// Probes `url`: a session setting made on one client connection is looked for from a second,
// fresh one after the first closed. PostgreSQL ends the backend with the session; a session-mode
// pgbouncer runs server_reset_query (DISCARD ALL) when the client leaves; a transaction-mode
// pooler runs no reset and hands the same server connection to the next client, which then sees
// the setting. Three rounds with one token, so a pool that rotates servers is still caught.
// Throws what connecting throws.
PoolerMode probe_pooler_mode(const std::string& url);

class ConnectionPool;

class PooledConnection {
 public:
  PooledConnection() = default;
  PooledConnection(ConnectionPool* pool, std::unique_ptr<pqxx::connection> conn)
      : pool_(pool), conn_(std::move(conn)) {}
  PooledConnection(PooledConnection&&) noexcept = default;
  PooledConnection& operator=(PooledConnection&& other) noexcept;
  PooledConnection(const PooledConnection&) = delete;
  PooledConnection& operator=(const PooledConnection&) = delete;
  ~PooledConnection();

  pqxx::connection& operator*() const { return *conn_; }
  pqxx::connection* operator->() const { return conn_.get(); }
  // Marks the connection as unusable: it is closed instead of returned to the pool.
  void discard() { broken_ = true; }

 private:
  void release();
  ConnectionPool* pool_ = nullptr;
  std::unique_ptr<pqxx::connection> conn_;
  bool broken_ = false;
};

// The readiness reason a pool sets while no connection can be had (yw/common/readiness.hpp).
inline constexpr std::string_view kReadinessPool = "database.pool";

class ConnectionPool {
 public:
  explicit ConnectionPool(PoolConfig config);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // Waits up to acquire_timeout for a free slot; opens a new connection when none is idle.
  // Throws pqxx::broken_connection when the server cannot be reached, yw::Error on timeout.
  PooledConnection acquire();

  const PoolConfig& config() const { return config_; }
  int open_count() const;
  // Counts connections opened after the first one was lost (a database reconnect metric).
  std::uint64_t reconnects() const;

 private:
  friend class PooledConnection;
  void give_back(std::unique_ptr<pqxx::connection> conn, bool broken);

  PoolConfig config_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int open_ = 0;
  std::uint64_t lost_ = 0;
  std::uint64_t reconnects_ = 0;
  bool starved_ = false;  // the last acquire timed out
};

}  // namespace yw::queue
