#pragma once
// Child processes for tests: run a command to completion, or start one and signal it.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace yw::test {

struct ProcessResult {
  int exit_code = -1;   // -1 when killed by a signal
  int term_signal = 0;  // the signal that ended it, or 0
  std::string out;      // stdout
  std::string err;      // stderr
};

struct ProcessOptions {
  std::map<std::string, std::string> env;  // added to (or overriding) the parent's environment
  std::vector<std::string> unset_env;      // removed from the child's environment
  std::string cwd;                         // empty: the parent's
  std::string stdin_data;
};

// Runs argv[0] (searched on PATH) to completion. Throws std::runtime_error when it cannot start.
ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& opts = {},
                          std::chrono::seconds timeout = std::chrono::seconds(120));

// A process running in the background; its stdout and stderr go to files read back by wait().
class BackgroundProcess {
 public:
  BackgroundProcess(const std::vector<std::string>& argv, const ProcessOptions& opts = {});
  ~BackgroundProcess();  // SIGKILLs the child if it still runs
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int signo) const;
  // What the process wrote to stderr so far.
  std::string err_so_far() const;
  // Polls until `needle` appears in stderr or the timeout passes; true when found.
  bool wait_for_err(const std::string& needle, std::chrono::milliseconds timeout) const;
  // Waits for exit (SIGKILL after `timeout`) and collects its output.
  ProcessResult wait(std::chrono::seconds timeout = std::chrono::seconds(60));

 private:
  pid_t pid_ = -1;
  std::string out_path_, err_path_;
  bool reaped_ = false;
};

// The yesod-worker binary under test.
std::string worker_binary();
// A fresh temporary directory (removed by the caller if wanted).
std::string make_temp_dir(const std::string& prefix);

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
int free_loopback_port();

// One HTTP GET on loopback: the whole response, or "" when nothing answers.
std::string http_get(int port, const std::string& path);

}  // namespace yw::test
