#include "yw/kernels/device.hpp"

#include <gtest/gtest.h>

#include "yw/common/error.hpp"

namespace yw {
namespace {

TEST(DeviceTest, ParsesEveryForm) {
  EXPECT_TRUE(parse_device("auto").is_auto);
  EXPECT_FALSE(parse_device("cpu").is_auto);
  EXPECT_FALSE(parse_device("cpu").device.is_cuda());
  EXPECT_EQ(parse_device("cuda").device, (Device{Device::Kind::cuda, 0}));
  EXPECT_EQ(parse_device("cuda:3").device, (Device{Device::Kind::cuda, 3}));
  EXPECT_EQ(parse_device("cuda:3").to_string(), "cuda:3");
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1a", "CPU"}) {
    EXPECT_THROW(parse_device(bad), ConfigError) << bad;
  }
}

TEST(DeviceTest, AutoPicksTheFirstGpuOrTheCpu) {
  EXPECT_EQ(resolve_device(parse_device("auto"), CudaInventory{false, 0, "none", {}}), Device{});
  EXPECT_EQ(resolve_device(parse_device("auto"), CudaInventory{true, 2, "", {"a", "b"}}),
            (Device{Device::Kind::cuda, 0}));
  EXPECT_EQ(resolve_device(parse_device("cpu"), CudaInventory{true, 2, "", {"a", "b"}}), Device{});
}

TEST(DeviceTest, MissingCudaDeviceIsAnError) {
  try {
    resolve_device(parse_device("cuda:1"), CudaInventory{true, 1, "", {"gpu"}});
    FAIL() << "cuda:1 with one device must fail";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(resolve_device(parse_device("cuda:0"), CudaInventory{true, 0, "no driver", {}}),
               ConfigError);
  try {
    resolve_device(parse_device("cuda:0"), CudaInventory{false, 0, "built without CUDA", {}});
    FAIL() << "a CPU-only build cannot use cuda:0";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA support"), std::string::npos) << e.what();
  }
}

TEST(DeviceTest, InventoryNeverThrowsAndExplainsAnEmptyResult) {
  const CudaInventory inv = cuda_inventory();
  if (inv.count == 0) {
    EXPECT_FALSE(inv.reason.empty());
  } else {
    EXPECT_FALSE(inv.describe(0).empty());
  }
}

}  // namespace
}  // namespace yw
