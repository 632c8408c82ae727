// Deterministic crash injection for the crash-safety tests (the way SQLite tests its journal): a named point
// in the writer code where a test can have the process killed, as a power cut or the OOM killer would.
#pragma once

namespace pdeq::run {

/// When the environment variable PDEQ_CRASH_AT is "<name>:<n>" (n >= 1), the n-th call of
/// crash_point("<name>") in this process sends the process SIGKILL; otherwise it does nothing (the variable
/// is read once). Points: "step" (after a training step), "write" (an atomic file write, half of the
/// temporary file written), "rename" (an atomic file write, temporary complete and synced, not yet renamed).
void crash_point(const char* name);

}  // namespace pdeq::run
