// The stop flag and signal handlers around runs (a process may run many: pdeq sweep, tests).
#include <pdeq/experiment/run.h>
#include <pdeq/run/stop_signal.h>

#include <signal.h>

#include "train_support.h"

namespace {

void custom_handler(int) {}

struct sigaction current_action(int signal_number) {
  struct sigaction action {};
  sigaction(signal_number, nullptr, &action);
  return action;
}

}  // namespace

TEST(StopSignal, ScopeInstallsHandlersRestoresThePreviousOnesAndClearsTheFlag) {
  pdeq::run::clear_stop_request();  // a second signal while the flag is set would exit the process
  struct sigaction custom {};
  custom.sa_handler = custom_handler;
  sigemptyset(&custom.sa_mask);
  struct sigaction saved_int {
  }, saved_term{};
  sigaction(SIGINT, &custom, &saved_int);
  sigaction(SIGTERM, &custom, &saved_term);
  {
    pdeq::run::StopSignalScope outer;
    EXPECT_NE(current_action(SIGINT).sa_handler, custom_handler);
    EXPECT_NE(current_action(SIGTERM).sa_handler, custom_handler);
    ::raise(SIGINT);  // handled: sets the flag, does not kill the test
    EXPECT_TRUE(pdeq::run::stop_requested());
    {
      pdeq::run::StopSignalScope inner;  // a run inside a sweep
    }
    EXPECT_TRUE(pdeq::run::stop_requested()) << "an inner scope must leave the flag to the outer one";
    EXPECT_NE(current_action(SIGINT).sa_handler, custom_handler);
  }
  EXPECT_FALSE(pdeq::run::stop_requested());
  EXPECT_EQ(current_action(SIGINT).sa_handler, custom_handler);
  EXPECT_EQ(current_action(SIGTERM).sa_handler, custom_handler);
  sigaction(SIGINT, &saved_int, nullptr);
  sigaction(SIGTERM, &saved_term, nullptr);
}

// Two runs in one process: the first is interrupted, the second starts with a clear flag and runs to the end;
// the process's own handlers are back after each.
TEST(StopSignal, AStoppedRunDoesNotStopTheNextOne) {
  pdeq::test::TempDir scratch("stop_runs");
  pdeq::test::write_tiny_cifar10(scratch.path(), 32);
  auto config = pdeq::test::tiny_cifar_config(scratch.path());
  config.train.epochs = 1;
  const auto before = current_action(SIGINT).sa_handler;
  pdeq::run::request_stop();
  const auto first = pdeq::experiment::train_run(config, scratch.path() / "first");
  EXPECT_FALSE(first.finished);
  EXPECT_TRUE(first.interrupted);
  EXPECT_FALSE(pdeq::run::stop_requested());
  EXPECT_EQ(current_action(SIGINT).sa_handler, before);
  const auto second = pdeq::experiment::train_run(config, scratch.path() / "second");
  EXPECT_TRUE(second.finished);
  EXPECT_FALSE(second.interrupted);
  EXPECT_EQ(current_action(SIGINT).sa_handler, before);
  // --max-steps is not an interruption.
  EXPECT_FALSE(pdeq::experiment::train_run(config, scratch.path() / "third", {false, 1}).interrupted);
}
