// Graceful interruption: SIGINT/SIGTERM ask the training loop to finish its step, checkpoint and exit.
#pragma once

namespace pdeq::run {

/// The signal handlers and the stop flag for the length of a run. Trainer::fit holds one; a program that runs
/// many runs in one process (a sweep) may hold its own around all of them. The outermost scope installs the
/// SIGINT/SIGTERM handlers, and on destruction restores the handlers that were there before and clears the
/// stop flag, so the next run starts clean; inner scopes do nothing, so a Ctrl-C during a run nested in a
/// sweep stays visible to the sweep (stop_requested()) until the sweep's own scope ends.
///
/// Example:
///   { pdeq::run::StopSignalScope scope; for (auto& c : configs) if (!run(c) && stop_requested()) break; }
class StopSignalScope {
 public:
  StopSignalScope();
  ~StopSignalScope();
  StopSignalScope(const StopSignalScope&) = delete;
  StopSignalScope& operator=(const StopSignalScope&) = delete;
};

/// Installs the handlers for the rest of the process (idempotent). A second Ctrl-C while stopping exits at
/// once. Prefer StopSignalScope, which puts the previous handlers back.
void install_stop_handlers();
bool stop_requested();
/// For tests and embedding programs: behave as if a signal had arrived / clear it.
void request_stop();
void clear_stop_request();

}  // namespace pdeq::run
