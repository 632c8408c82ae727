// `pdeq ... --nproc N`: this process starts N local ranks of itself and supervises them.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace pdeq::dist {

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
int free_loopback_port();

/// Runs `executable` `nproc` times with `args` plus `--rank r --world-size N --master 127.0.0.1:<free port>`
/// and waits for all of them. Each rank is put in its own process group, so a terminal's Ctrl-C reaches this
/// process only, which forwards SIGINT/SIGTERM once to every rank (they stop together at the next step). When
/// a rank fails (other than by exiting 130, interrupted), the others get SIGTERM; any rank still alive
/// `grace_seconds` after the first failure gets SIGKILL. Returns 0 when all succeeded, else the exit code of
/// the first rank that failed (128 + signal when it was killed).
int launch_local(const std::filesystem::path& executable, const std::vector<std::string>& args, int nproc,
                 int grace_seconds = 30);

/// "ADDR:PORT" (the rendezvous of `--master`) as (ADDR, PORT); throws std::invalid_argument naming what is
/// wrong.
std::pair<std::string, int> parse_master(const std::string& master);

/// `args` without `--<name> VALUE` / `--<name>=VALUE` (the launcher's own option, which ranks must not see).
std::vector<std::string> without_option(const std::vector<std::string>& args, const std::string& name);

}  // namespace pdeq::dist
