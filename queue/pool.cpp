#include "yw/queue/pool.hpp"

#include <chrono>
#include <random>

#include <fmt/format.h>

#include "yw/common/error.hpp"
#include "yw/common/log.hpp"
#include "yw/common/readiness.hpp"

namespace yw::queue {

PooledConnection& PooledConnection::operator=(PooledConnection&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = other.pool_;
    conn_ = std::move(other.conn_);
    broken_ = other.broken_;
    other.pool_ = nullptr;
  }
  return *this;
}

PooledConnection::~PooledConnection() {
  release();
}

void PooledConnection::release() {
  if (pool_ != nullptr && conn_) pool_->give_back(std::move(conn_), broken_);
  pool_ = nullptr;
}

ConnectionPool::ConnectionPool(PoolConfig config) : config_(std::move(config)) {
  YW_CHECK(config_.max_size > 0, "connection pool: max_size must be positive");
}

ConnectionPool::~ConnectionPool() = default;

PooledConnection ConnectionPool::acquire() {
  std::unique_lock lock(mutex_);
  const auto deadline = std::chrono::steady_clock::now() + config_.acquire_timeout;
  while (true) {
    while (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      if (conn->is_open()) {
        if (starved_) {
          starved_ = false;
          Readiness::global().clear(kReadinessPool);
        }
        return PooledConnection(this, std::move(conn));
      }
      --open_;
      ++lost_;
    }
    if (open_ < config_.max_size) {
      ++open_;
      const bool is_reconnect = lost_ > 0;
      lock.unlock();
      try {
        auto conn = std::make_unique<pqxx::connection>(config_.url);
        {
          std::lock_guard relock(mutex_);
          if (is_reconnect) {
            ++reconnects_;
            lost_ = lost_ > 0 ? lost_ - 1 : 0;
          }
          if (starved_) {
            starved_ = false;
            Readiness::global().clear(kReadinessPool);
          }
        }
        return PooledConnection(this, std::move(conn));
      } catch (...) {
        lock.lock();
        --open_;
        cv_.notify_one();
        throw;
      }
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      // Readiness says so until a lease is had again; the log names the pool once per episode.
      const std::string reason = fmt::format("no connection of the {} free within {} ms",
                                             config_.name, config_.acquire_timeout.count());
      if (!starved_) {
        starved_ = true;
        log(LogLevel::warn, "queue", reason, {field("open", open_)});
      }
      Readiness::global().set(kReadinessPool, reason);
      YW_THROW("database: no connection of the {} free within {} ms (pool size {})", config_.name,
               config_.acquire_timeout.count(), config_.max_size);
    }
  }
}

void ConnectionPool::give_back(std::unique_ptr<pqxx::connection> conn, bool broken) {
  std::lock_guard lock(mutex_);
  if (broken || !conn->is_open()) {
    --open_;
    ++lost_;
    conn.reset();
  } else {
    idle_.push_back(std::move(conn));
  }
  cv_.notify_one();
}

PoolerMode probe_pooler_mode(const std::string& url) {
  std::random_device rd;
  const std::string token = fmt::format("{:016x}", (std::uint64_t{rd()} << 32) ^ rd());
  for (int round = 0; round < 3; ++round) {
    {
      pqxx::connection first(url);
      pqxx::nontransaction tx(first);
      tx.exec_params("SELECT set_config('yw.pooler_probe', $1, false)", token);
    }
    pqxx::connection second(url);
    pqxx::nontransaction tx(second);
    const auto row = tx.exec1("SELECT current_setting('yw.pooler_probe', true)");
    if (!row[0].is_null() && row[0].as<std::string>() == token) return PoolerMode::transaction;
  }
  return PoolerMode::session;
}

int ConnectionPool::open_count() const {
  std::lock_guard lock(mutex_);
  return open_;
}

std::uint64_t ConnectionPool::reconnects() const {
  std::lock_guard lock(mutex_);
  return reconnects_;
}

}  // namespace yw::queue
