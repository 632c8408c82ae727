// The process supervisor: exit codes, logs, process groups, signal forwarding, and no child outliving it.
#include <pdeq/proc/supervisor.h>

#include "test_support.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace pdeq {
namespace {

using namespace std::chrono_literals;

proc::ChildExit wait_for(proc::Supervisor& supervisor) {
  for (int i = 0; i < 300; ++i) {
    if (auto exit = supervisor.wait_any(100ms)) return *exit;
  }
  ADD_FAILURE() << "no child exited within 30 s";
  return {};
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Whether `pid` runs (a zombie waiting for whoever adopted it does not).
bool process_exists(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto state = line.find(") ");
  return state != std::string::npos && line.compare(state + 2, 1, "Z") != 0;
}

TEST(SupervisorTest, ReportsExitCodesAndSignalsOfEachChild) {
  proc::Supervisor supervisor;
  const int ok = supervisor.start({"/bin/sh", "-c", "exit 0"});
  const int seven = supervisor.start({"/bin/sh", "-c", "sleep 0.2; exit 7"});
  const int killed = supervisor.start({"/bin/sh", "-c", "sleep 0.4; kill -9 $$"});
  std::map<int, int> codes;
  for (int i = 0; i < 3; ++i) {
    const auto exit = wait_for(supervisor);
    codes[exit.id] = exit.exit_code;
  }
  EXPECT_EQ(codes.at(ok), 0);
  EXPECT_EQ(codes.at(seven), 7);
  EXPECT_EQ(codes.at(killed), 128 + SIGKILL);
  EXPECT_EQ(supervisor.running(), 0u);
  EXPECT_FALSE(supervisor.wait_any(10ms).has_value());
}

TEST(SupervisorTest, LogGetsStdoutAndStderrAndStdinIsEmpty) {
  test::TempDir scratch;
  const auto log = scratch.path() / "child.log";
  proc::Supervisor supervisor;
  supervisor.start({"/bin/sh", "-c", "echo out; echo err >&2; cat; echo end"}, log);
  EXPECT_EQ(wait_for(supervisor).exit_code, 0);
  EXPECT_EQ(read_file(log), "out\nerr\nend\n");
}

TEST(SupervisorTest, ChildrenRunInTheirOwnProcessGroup) {
  test::TempDir scratch;
  const auto log = scratch.path() / "pgid.log";
  proc::Supervisor supervisor;
  supervisor.start({"/bin/sh", "-c", "echo $$; cut -d' ' -f5 /proc/$$/stat"}, log);
  EXPECT_EQ(wait_for(supervisor).exit_code, 0);
  std::istringstream text(read_file(log));
  long pid = 0, pgid = -1;
  text >> pid >> pgid;
  EXPECT_EQ(pid, pgid);
  EXPECT_NE(pgid, static_cast<long>(::getpgrp()));
}

TEST(SupervisorTest, ForwardsSigtermToEveryChildOnce) {
  test::TempDir scratch;
  proc::Supervisor supervisor;
  // Each child counts the SIGTERMs it receives and exits 130 after two seconds without another.
  for (int i = 0; i < 2; ++i) {
    const auto log = scratch.path() / ("child" + std::to_string(i));
    supervisor.start({"/bin/sh", "-c",
                      "n=0; trap 'n=$((n+1))' TERM; while [ $n -eq 0 ]; do sleep 0.05; done; "
                      "sleep 1; echo $n; exit 130"},
                     log);
  }
  std::this_thread::sleep_for(300ms);  // both shells have set their traps
  EXPECT_FALSE(supervisor.stop_requested());
  ::kill(::getpid(), SIGTERM);  // as a user's `kill` of the supervising process
  for (int i = 0; i < 2; ++i) EXPECT_EQ(wait_for(supervisor).exit_code, 130);
  EXPECT_TRUE(supervisor.stop_requested());
  for (int i = 0; i < 2; ++i) EXPECT_EQ(read_file(scratch.path() / ("child" + std::to_string(i))), "1\n");
}

TEST(SupervisorTest, RestoresTheSignalHandlersItReplaced) {
  struct sigaction before {};
  ::sigaction(SIGTERM, nullptr, &before);
  { proc::Supervisor supervisor; }
  struct sigaction after {};
  ::sigaction(SIGTERM, nullptr, &after);
  EXPECT_EQ(before.sa_handler, after.sa_handler);
}

TEST(SupervisorTest, NoChildOutlivesItsSupervisor) {
  test::TempDir scratch;
  const auto log = scratch.path() / "pid";
  pid_t pid = 0;
  {
    proc::Supervisor supervisor;
    supervisor.start({"/bin/sh", "-c", "echo $$; exec sleep 60"}, log);
    for (int i = 0; i < 100 && read_file(log).empty(); ++i) std::this_thread::sleep_for(20ms);
    pid = static_cast<pid_t>(std::stol(read_file(log)));
    EXPECT_TRUE(process_exists(pid));
  }  // as when an exception unwinds through the owner
  EXPECT_FALSE(process_exists(pid));
}

TEST(SupervisorTest, ChildrenDieWithASupervisorKilledBySigkill) {
  test::TempDir scratch;
  const auto pids = scratch.path() / "pids";
  // A supervising process of its own with two children, then `kill -9` of it, as a user's or the OOM killer's.
  const pid_t supervising = ::fork();
  ASSERT_GE(supervising, 0);
  if (supervising == 0) {
    proc::Supervisor supervisor;
    for (int i = 0; i < 2; ++i)
      supervisor.start({"/bin/sh", "-c", "echo $$ >> '" + pids.string() + "'; exec sleep 60"});
    for (;;) ::pause();
  }
  std::vector<pid_t> children;
  for (int i = 0; i < 250 && children.size() < 2; ++i) {
    std::this_thread::sleep_for(20ms);
    children.clear();
    std::istringstream text(read_file(pids));
    for (long pid = 0; text >> pid;) children.push_back(static_cast<pid_t>(pid));
  }
  ASSERT_EQ(children.size(), 2u);
  ::kill(supervising, SIGKILL);
  ::waitpid(supervising, nullptr, 0);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  bool gone = false;
  while (!gone && std::chrono::steady_clock::now() < deadline) {
    gone = !process_exists(children[0]) && !process_exists(children[1]);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(gone) << "children of a killed supervisor still run";
}

TEST(SupervisorTest, AProgramThatCannotStartIsAnError) {
  proc::Supervisor supervisor;
  // posix_spawn reports a missing program either at once or as exit code 127 of the child.
  try {
    supervisor.start({"/nonexistent/pdeq"});
    EXPECT_EQ(wait_for(supervisor).exit_code, 127);
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/pdeq"), std::string::npos);
  }
}

}  // namespace
}  // namespace pdeq
