// Graceful interruption: SIGINT/SIGTERM ask the training loop to finish its step, checkpoint and exit.
#pragma once

namespace pdeq::train {

/// Installs the handlers (idempotent). A second Ctrl-C while stopping exits at once.
void install_stop_handlers();
bool stop_requested();
/// For tests and embedding programs: behave as if a signal had arrived / clear it.
void request_stop();
void clear_stop_request();

}  // namespace pdeq::train
