// Static checks of what cannot be built here (no Docker engine runs on these machines): the
// Dockerfiles, the deployment examples and the README's configuration table.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "yw/worker/config.hpp"

namespace {

std::string read(const std::string& rel) {
  std::ifstream in(std::string(YW_SOURCE_DIR) + "/" + rel);
  EXPECT_TRUE(in.good()) << rel << " is missing";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Instruction {
  std::string keyword;  // upper case
  std::string args;
};

// Dockerfile instructions with continuation lines joined and comments dropped.
std::vector<Instruction> parse_dockerfile(const std::string& text) {
  std::vector<Instruction> out;
  std::istringstream in(text);
  std::string line, pending;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    pending += line;
    if (!pending.empty() && pending.back() == '\\') {
      pending.pop_back();
      pending += ' ';
      continue;
    }
    const auto start = pending.find_first_not_of(" \t");
    const auto sp = pending.find(' ', start);
    Instruction ins{pending.substr(start, sp - start),
                    sp == std::string::npos ? "" : pending.substr(sp + 1)};
    for (auto& c : ins.keyword)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    out.push_back(ins);
    pending.clear();
  }
  return out;
}

// Checks shared by both images: known instructions, multi-stage with named stages that COPY
// --from refers to, a non-root USER and a HEALTHCHECK in the final stage.
void check_image(const std::string& file, const std::string& device) {
  SCOPED_TRACE(file);
  static const std::set<std::string> kKnown = {
      "FROM",        "RUN",        "COPY", "ENV",        "ARG",   "WORKDIR", "USER",  "EXPOSE",
      "HEALTHCHECK", "ENTRYPOINT", "CMD",  "STOPSIGNAL", "LABEL", "ADD",     "VOLUME"};
  const auto ins = parse_dockerfile(read(file));
  std::set<std::string> stages;
  std::string user;
  bool healthcheck = false;
  std::string entrypoint;
  int froms = 0;
  for (const auto& i : ins) {
    EXPECT_TRUE(kKnown.contains(i.keyword)) << "unknown instruction " << i.keyword;
    if (i.keyword == "FROM") {
      ++froms;
      std::smatch m;
      if (std::regex_search(i.args, m, std::regex(R"( AS (\w+))"))) stages.insert(m[1]);
      user.clear();
      healthcheck = false;
    } else if (i.keyword == "COPY") {
      std::smatch m;
      if (std::regex_search(i.args, m, std::regex(R"(--from=(\w+))"))) {
        EXPECT_TRUE(stages.contains(m[1])) << "COPY --from an unknown stage: " << i.args;
      }
    } else if (i.keyword == "USER") {
      user = i.args;
    } else if (i.keyword == "HEALTHCHECK") {
      healthcheck = i.args.find("/healthz") != std::string::npos;
    } else if (i.keyword == "ENTRYPOINT") {
      entrypoint = i.args;
    }
  }
  EXPECT_GE(froms, 2) << "multi-stage build";
  EXPECT_FALSE(user.empty()) << "the runtime stage sets a USER";
  EXPECT_NE(user, "root");
  EXPECT_NE(user, "0");
  EXPECT_TRUE(healthcheck) << "the runtime stage has a HEALTHCHECK on /healthz";
  EXPECT_NE(entrypoint.find("\"run\""), std::string::npos) << entrypoint;
  EXPECT_NE(entrypoint.find("\"" + device + "\""), std::string::npos) << entrypoint;
}

TEST(DeployTest, CudaImageBuildsForAmpereAndHopperAndFailsLoudlyWithoutAGpu) {
  check_image("Dockerfile.cuda", "cuda:0");
  const std::string text = read("Dockerfile.cuda");
  EXPECT_NE(text.find("ARG CUDA_VERSION=13"), std::string::npos);
  EXPECT_NE(text.find("-devel-"), std::string::npos);
  EXPECT_NE(text.find("-runtime-"), std::string::npos);
  EXPECT_NE(text.find("ARG CUDA_ARCHS=\"80;90\""), std::string::npos);
  EXPECT_NE(text.find("-DYW_CUDA=ON"), std::string::npos);
}

TEST(DeployTest, CpuImageBuildsWithoutCuda) {
  check_image("Dockerfile", "cpu");
  EXPECT_NE(read("Dockerfile").find("-DYW_CUDA=OFF"), std::string::npos);
}

TEST(DeployTest, GracePeriodsExceedTheShutdownTimeout) {
  const int timeout_s = 10;  // YW_SHUTDOWN_TIMEOUT_S in the examples
  std::smatch m;
  const std::string k8s = read("deploy/kubernetes/deployment.yaml");
  ASSERT_TRUE(std::regex_search(k8s, m, std::regex(R"(terminationGracePeriodSeconds: (\d+))")));
  EXPECT_GT(std::stoi(m[1]), timeout_s);
  EXPECT_NE(k8s.find("nvidia.com/gpu: 1"), std::string::npos);
  EXPECT_NE(k8s.find("path: /healthz"), std::string::npos);
  EXPECT_NE(k8s.find("path: /readyz"), std::string::npos);
  const std::string unit = read("deploy/systemd/yesod-worker.service");
  ASSERT_TRUE(std::regex_search(unit, m, std::regex(R"(TimeoutStopSec=(\d+))")));
  EXPECT_GT(std::stoi(m[1]), timeout_s);
  const std::string pm2 = read("deploy/pm2/ecosystem.config.cjs");
  ASSERT_TRUE(std::regex_search(pm2, m, std::regex(R"(kill_timeout: (\d+))")));
  EXPECT_GT(std::stoi(m[1]), timeout_s * 1000);
  const std::string compose = read("deploy/docker-compose.yml");
  ASSERT_TRUE(std::regex_search(compose, m, std::regex(R"(stop_grace_period: (\d+)s)")));
  EXPECT_GT(std::stoi(m[1]), timeout_s);
}

TEST(DeployTest, ReadmeDocumentsEverySetting) {
  const std::string readme = read("README.md");
  for (const auto& spec : yw::worker::setting_specs()) {
    EXPECT_NE(readme.find("`" + std::string(spec.env) + "`"), std::string::npos) << spec.env;
    EXPECT_NE(readme.find("`--" + std::string(spec.flag) + "`"), std::string::npos) << spec.flag;
  }
  EXPECT_NE(readme.find("scripts/dev.sh"), std::string::npos);
  EXPECT_NE(readme.find("scripts/test.sh"), std::string::npos);
}

}  // namespace
