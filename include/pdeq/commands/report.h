// `pdeq report`: results table and plots over finished run folders.
#pragma once

#include <pdeq/sweep/report.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace pdeq::commands {

struct ReportCommandOptions {
  std::vector<std::string> runs;  ///< run folders or shell globs
  std::filesystem::path out;      ///< report folder
  sweep::ReportOptions report;
};

struct ReportResult {
  nlohmann::json report;  ///< rows and columns as written to results.csv/.md
  std::string markdown;   ///< the table as results.md holds it
  nlohmann::json to_json() const { return report; }
};

ReportResult report(const ReportCommandOptions& options);

}  // namespace pdeq::commands
