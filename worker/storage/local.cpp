// file:// storage: inputs confined to YW_INPUT_ROOTS and artifacts written whole (temporary
// name, fsync, rename), plus LocalInput's ownership of temporary downloads.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "storage/detail.hpp"
#include "yw/common/error.hpp"
#include "yw/common/log.hpp"

namespace yw::worker {

namespace fs = std::filesystem;

LocalInput::LocalInput(LocalInput&& other) noexcept
    : path_(std::move(other.path_)), temporary_(std::exchange(other.temporary_, false)) {}

LocalInput& LocalInput::operator=(LocalInput&& other) noexcept {
  if (this != &other) {
    if (temporary_) {
      std::error_code ec;
      fs::remove(path_, ec);
    }
    path_ = std::move(other.path_);
    temporary_ = std::exchange(other.temporary_, false);
  }
  return *this;
}

LocalInput::~LocalInput() {
  if (temporary_) {
    std::error_code ec;
    fs::remove(path_, ec);
  }
}

namespace storage_detail {
namespace {

bool is_within(const fs::path& child, const fs::path& root) {
  auto c = child.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++c) {
    if (r->empty()) continue;  // a trailing separator yields an empty last element
    if (c == child.end() || *c != *r) return false;
  }
  return true;
}

}  // namespace

LocalInput fetch_file(std::string_view uri, const WorkerConfig& config) {
  std::string_view rest = uri.substr(kFileScheme.size());
  // file://localhost/abs and file:///abs are the same; file://./rel is relative to the cwd.
  if (rest.starts_with("localhost/")) rest.remove_prefix(std::string_view("localhost").size());
  if (!rest.starts_with('/') && !rest.starts_with("./")) {
    YW_THROW_INPUT("audio: file URI must be file:///absolute/path, got '{}'", uri);
  }
  const std::string decoded = percent_decode(rest, uri);
  path_segments(decoded, "audio", uri);  // refuses `..`
  if (config.input_roots.empty()) {
    YW_THROW_INPUT("audio: file:// inputs are disabled (YW_INPUT_ROOTS is empty): '{}'", uri);
  }
  const fs::path requested = fs::absolute(fs::path(decoded));
  std::error_code ec;
  const fs::path real = fs::canonical(requested, ec);
  if (ec) YW_THROW_INPUT("audio: cannot open '{}': {}", requested.string(), ec.message());

  bool inside = false;
  for (const auto& root : config.input_roots) {
    std::error_code rec;
    const fs::path real_root = fs::canonical(fs::absolute(fs::path(root)), rec);
    if (!rec && is_within(real, real_root)) {
      inside = true;
      break;
    }
  }
  if (!inside) {
    // The resolved path is named so a symlink that leaves the roots is visible as such.
    YW_THROW_INPUT("audio: '{}' resolves to '{}', outside YW_INPUT_ROOTS", requested.string(),
                   real.string());
  }
  if (!fs::is_regular_file(real, ec)) {
    YW_THROW_INPUT("audio: '{}' is not a regular file", requested.string());
  }
  return LocalInput(real, false);
}

namespace {

void write_all(int fd, const char* data, size_t n, const fs::path& shown) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      YW_THROW("storage: cannot write '{}': {}", shown.string(), errno_text(errno));
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
}

void copy_synced(const fs::path& from, const fs::path& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) YW_THROW("storage: cannot read '{}': {}", from.string(), errno_text(errno));
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    const int err = errno;
    ::close(in);
    YW_THROW("storage: cannot create '{}': {}", to.string(), errno_text(err));
  }
  try {
    std::array<char, 1 << 16> buf{};
    for (;;) {
      const ssize_t r = ::read(in, buf.data(), buf.size());
      if (r < 0) {
        if (errno == EINTR) continue;
        YW_THROW("storage: cannot read '{}': {}", from.string(), errno_text(errno));
      }
      if (r == 0) break;
      write_all(out, buf.data(), static_cast<size_t>(r), to);
    }
    if (::fsync(out) != 0) {
      YW_THROW("storage: cannot flush '{}': {}", to.string(), errno_text(errno));
    }
  } catch (...) {
    ::close(in);
    ::close(out);
    throw;
  }
  ::close(in);
  if (::close(out) != 0) {
    YW_THROW("storage: cannot write '{}': {}", to.string(), errno_text(errno));
  }
}

}  // namespace

std::string put_file(const fs::path& local_file, const std::vector<std::string>& key_segs,
                     const WorkerConfig& config) {
  const std::string root_text = percent_decode(
      std::string_view(config.output_uri).substr(kFileScheme.size()), config.output_uri);
  fs::path dest = fs::absolute(fs::path(root_text)).lexically_normal();
  for (const auto& s : key_segs)
    dest /= s;
  const fs::path dir = dest.parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) YW_THROW("storage: cannot create '{}': {}", dir.string(), ec.message());

  static std::atomic<unsigned> counter{0};
  const fs::path tmp =
      dir / fmt::format(".{}.tmp-{}-{}", dest.filename().string(), ::getpid(), counter++);
  try {
    copy_synced(local_file, tmp);
    fs::rename(tmp, dest);
  } catch (const std::exception& e) {
    fs::remove(tmp, ec);
    if (dynamic_cast<const Error*>(&e) != nullptr) throw;
    YW_THROW("storage: cannot store '{}': {}", dest.string(), e.what());
  }
  // The rename is durable only once the directory entry is on disk.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return "file://" + dest.string();
}

}  // namespace storage_detail
}  // namespace yw::worker
