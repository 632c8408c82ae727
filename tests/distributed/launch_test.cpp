// The local launcher: rendezvous addresses, every rank's command line, and how a failing rank stops the rest.
#include <pdeq/distributed/launch.h>

#include "test_support.h"

#include <chrono>
#include <fstream>

namespace pdeq {
namespace {

TEST(LaunchTest, MasterAddresses) {
  EXPECT_EQ(distributed::parse_master("10.0.0.1:29500"), (std::pair<std::string, int>{"10.0.0.1", 29500}));
  EXPECT_EQ(distributed::parse_master("node-a:1"), (std::pair<std::string, int>{"node-a", 1}));
  for (const char* bad : {"10.0.0.1", ":29500", "host:", "host:0", "host:65536", "host:12x"}) {
    PDEQ_ASSERT_THROWS_WITH(distributed::parse_master(bad), "expected ADDR:PORT");
  }
}

TEST(LaunchTest, EveryRankGetsItsAddressAndAllSucceed) {
  test::TempDir scratch;
  const auto out = scratch.path();
  const int code = distributed::launch_local(3, [&](const distributed::RankAddress& a) {
    return std::vector<std::string>{"/bin/sh", "-c",
                                    "echo " + std::to_string(a.rank) + " " + std::to_string(a.world_size) +
                                        " " + a.master + " > " + (out / std::to_string(a.rank)).string()};
  });
  EXPECT_EQ(code, 0);
  std::string master;
  for (int r = 0; r < 3; ++r) {
    std::ifstream in(out / std::to_string(r));
    int rank = -1, world = -1;
    std::string address;
    in >> rank >> world >> address;
    EXPECT_EQ(rank, r);
    EXPECT_EQ(world, 3);
    EXPECT_EQ(address.rfind("127.0.0.1:", 0), 0u) << address;
    if (r == 0) master = address;
    EXPECT_EQ(address, master);  // one rendezvous for all ranks
  }
}

TEST(LaunchTest, AFailingRankStopsTheOthersAndItsCodeIsReturned) {
  const auto start = std::chrono::steady_clock::now();
  const int code = distributed::launch_local(2, [](const distributed::RankAddress& a) {
    // Rank 0 would run for a minute; rank 1 fails at once.
    return std::vector<std::string>{"/bin/sh", "-c", a.rank == 0 ? "exec sleep 60" : "exit 3"};
  });
  EXPECT_EQ(code, 3);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 30.0);
}

TEST(LaunchTest, ARankThatIgnoresSigtermIsKilledAfterTheGracePeriod) {
  const int code = distributed::launch_local(
      2,
      [](const distributed::RankAddress& a) {
        return std::vector<std::string>{"/bin/sh", "-c", a.rank == 0 ? "trap '' TERM; sleep 60" : "exit 5"};
      },
      /*grace_seconds=*/1);
  EXPECT_EQ(code, 5);
}

}  // namespace
}  // namespace pdeq
