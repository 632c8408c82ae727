#include <pdeq/commands/report.h>

namespace pdeq::commands {

ReportResult report(const ReportCommandOptions& options) {
  const nlohmann::json table =
      sweep::write_report(sweep::collect_runs(options.runs), options.out, options.report);
  return {table, sweep::markdown_table(table)};
}

}  // namespace pdeq::commands
