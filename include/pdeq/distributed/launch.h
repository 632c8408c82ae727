// `pdeq ... --nproc N`: this process starts N local ranks of pdeq and supervises them.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace pdeq::distributed {

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
int free_loopback_port();

/// Where one rank of a local launch joins: its rank, the number of ranks and the rendezvous "ADDR:PORT".
struct RankAddress {
  int rank = 0;
  int world_size = 1;
  std::string master;
};

/// The full command line (executable first) that starts one rank.
using RankCommandLine = std::function<std::vector<std::string>(const RankAddress&)>;

/// Starts `nproc` ranks, rendezvous on 127.0.0.1:<free port>, under a proc::Supervisor (own process groups,
/// SIGINT/SIGTERM forwarded to every rank so they stop together at the next step) and waits for all of them.
/// When a rank fails (other than by exiting 130, interrupted), the others get SIGTERM; any rank still alive
/// `grace_seconds` after the first failure gets SIGKILL. Returns 0 when all succeeded, else the exit code of
/// the first rank that failed (128 + signal when it was killed).
int launch_local(int nproc, const RankCommandLine& command_line, int grace_seconds = 30);

/// "ADDR:PORT" (the rendezvous of `--master`) as (ADDR, PORT); throws std::invalid_argument naming what is
/// wrong.
std::pair<std::string, int> parse_master(const std::string& master);

}  // namespace pdeq::distributed
