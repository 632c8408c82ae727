#include <pdeq/commands/export.h>

namespace pdeq::commands {

ExportResult export_model(const ExportCommandOptions& options) {
  return {options.out, deploy::export_run(options.run, options.out, options.exporter)};
}

}  // namespace pdeq::commands
