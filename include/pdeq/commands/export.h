// `pdeq export`: a trained run as an integer model (.pdeqint or ONNX).
#pragma once

#include <pdeq/deploy/export.h>

#include <nlohmann/json.hpp>

#include <filesystem>

namespace pdeq::commands {

struct ExportCommandOptions {
  std::filesystem::path run;
  std::filesystem::path out;  ///< file to write
  deploy::ExportOptions exporter;
};

struct ExportResult {
  std::filesystem::path file;
  nlohmann::json report;  ///< format, ops, int8 and float layers, bit widths, file bytes (the file's meta)
  nlohmann::json to_json() const { return report; }
};

ExportResult export_model(const ExportCommandOptions& options);

}  // namespace pdeq::commands
