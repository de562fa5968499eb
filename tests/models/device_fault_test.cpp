// A sticky device error end to end (labels model + a real PostgreSQL): `yesod-worker run` with a
// TorchScript model whose forward raises libtorch's words for an illegal memory access (the
// error a poisoned CUDA context gives every later call). The separate_stems job must fail back
// retryable (not be retried in halves, not fail for good), /readyz must turn 503 naming the
// error, and the worker must stop by itself with exit status 1 for its supervisor.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "kernels/audio_fixtures.hpp"
#include "support/pg_fixture.hpp"
#include "support/process.hpp"
#include "torch_models.hpp"
#include "yw/queue/client.hpp"
#include "yw/queue/pool.hpp"

namespace yw::test {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(DeviceFault, StickyErrorFailsTheJobBackTurnsReadinessDownAndStopsTheWorker) {
  YW_REQUIRE_DATABASE();
  PgBossSchema schema;
  const ScratchDir dir("yw-device-fault");
  fs::create_directories(dir / "in");
  fs::create_directories(dir / "out");
  const std::string model = (dir / "faulty.pt").string();
  save_broken_model(model, BrokenKind::device_fault);
  std::vector<std::int16_t> pcm(44100 * 2 * 3);
  for (std::size_t i = 0; i < pcm.size(); ++i)
    pcm[i] = static_cast<std::int16_t>((i * 7919) % 2000 - 1000);
  write_bytes(dir / "in" / "song.wav", wav_bytes(44100, 2, pcm));

  ProcessOptions opts;
  opts.cwd = (dir / "out").string();
  opts.env = {{"DATABASE_URL", schema.url()},
              {"PGBOSS_SCHEMA", schema.name()},
              {"YW_DEVICE", "cpu"},
              {"YW_MODEL", model},
              {"YW_QUEUES", "separate_stems"},
              {"YW_METRICS_ADDR", "127.0.0.1:0"},  // any free port; the log names it
              {"YW_INPUT_ROOTS", (dir / "in").string()},
              {"YW_OUTPUT_URI", "file://" + (dir / "out").string()}};
  opts.unset_env = {"NODE_ENV"};
  BackgroundProcess worker({worker_binary(), "run"}, opts);
  ASSERT_TRUE(worker.wait_for_err("started", seconds(60))) << worker.err_so_far();
  const std::string log = worker.err_so_far();
  const auto at = log.find("port=");
  ASSERT_NE(at, std::string::npos) << log;
  const int port = std::stoi(log.substr(at + 5));
  ASSERT_TRUE(http_get(port, "/readyz").starts_with("HTTP/1.1 200")) << worker.err_so_far();

  queue::ConnectionPool pool(queue::PoolConfig{.url = schema.url(), .max_size = 2});
  queue::PgBossClient client(pool, schema.name());
  const auto id = client.send(
      "separate_stems", {nlohmann::json{{"audio", "file://" + (dir / "in" / "song.wav").string()}},
                         nlohmann::json::object()});
  ASSERT_TRUE(id.has_value());

  // /readyz names the fault from the moment the device is marked until the worker has stopped.
  std::string unready;
  const auto deadline = std::chrono::steady_clock::now() + seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string r = http_get(port, "/readyz");
    if (r.find("device: unhealthy") != std::string::npos) {
      unready = r;
      break;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_TRUE(unready.starts_with("HTTP/1.1 503")) << unready << worker.err_so_far();
  EXPECT_NE(unready.find("illegal memory access"), std::string::npos) << unready;

  const auto r = worker.wait(seconds(60));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("device unhealthy"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("retrying in halves"), std::string::npos) << r.err;

  // Failed back for a retry: pg-boss put the job back (state retry), its error names the fault.
  pqxx::connection c(schema.url());
  pqxx::nontransaction tx(c);
  const auto row = tx.exec_params1("SELECT state::text, coalesce(output::text, '') FROM " +
                                       schema.name() + ".job WHERE id = $1::uuid",
                                   *id);
  EXPECT_EQ(row[0].as<std::string>(), "retry") << row[1].as<std::string>();
  EXPECT_NE(row[1].as<std::string>().find("illegal memory access"), std::string::npos)
      << row[1].as<std::string>();
}

}  // namespace
}  // namespace yw::test
