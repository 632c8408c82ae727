// One writer per run folder: the lock refuses a second holder naming the first, and dies with its process.
#include <pdeq/run/run_lock.h>

#include "test_support.h"

#include <sys/wait.h>
#include <unistd.h>

namespace pdeq::run {
namespace {

TEST(RunLockTest, ASecondWriterIsRefusedNamingTheHolder) {
  test::TempDir scratch;
  const auto root = scratch.path() / "run";
  EXPECT_FALSE(RunLock::holder(root).has_value());
  {
    RunLock first(root);
    EXPECT_EQ(RunLock::holder(root), static_cast<long>(::getpid()));
    PDEQ_ASSERT_THROWS_WITH(RunLock{root}, "is being written by another pdeq process (pid " +
                                                std::to_string(::getpid()) + ")");
    RunLock moved = std::move(first);  // the lock goes with the object
    PDEQ_ASSERT_THROWS_WITH(RunLock{root}, "being written by another pdeq process");
  }
  EXPECT_FALSE(RunLock::holder(root).has_value());
  RunLock again(root);  // released on destruction
}

TEST(RunLockTest, TheKernelReleasesTheLockOfAKilledProcess) {
  test::TempDir scratch;
  const auto root = scratch.path() / "run";
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    RunLock lock(root);
    [[maybe_unused]] const ssize_t n = ::write(ready[1], "x", 1);
    for (;;) ::pause();
  }
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  EXPECT_EQ(RunLock::holder(root), static_cast<long>(child));
  PDEQ_ASSERT_THROWS_WITH(RunLock{root}, "(pid " + std::to_string(child) + ")");
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_FALSE(RunLock::holder(root).has_value());
  RunLock mine(root);
  ::close(ready[0]);
  ::close(ready[1]);
}

}  // namespace
}  // namespace pdeq::run
