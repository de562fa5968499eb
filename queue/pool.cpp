#include "yw/queue/pool.hpp"

#include "yw/common/error.hpp"

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
      if (conn->is_open()) return PooledConnection(this, std::move(conn));
      --open_;
      ++lost_;
    }
    if (open_ < config_.max_size) {
      ++open_;
      const bool is_reconnect = lost_ > 0;
      lock.unlock();
      try {
        auto conn = std::make_unique<pqxx::connection>(config_.url);
        if (is_reconnect) {
          std::lock_guard relock(mutex_);
          ++reconnects_;
          lost_ = lost_ > 0 ? lost_ - 1 : 0;
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
      YW_THROW("database: no connection free within {} ms (pool size {})",
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

int ConnectionPool::open_count() const {
  std::lock_guard lock(mutex_);
  return open_;
}

std::uint64_t ConnectionPool::reconnects() const {
  std::lock_guard lock(mutex_);
  return reconnects_;
}

}  // namespace yw::queue
