// `pdeq bench infer`: images/s of an exported integer model against the same network in float.
#pragma once

#include <pdeq/deploy/bench.h>

#include <nlohmann/json.hpp>

#include <filesystem>

namespace pdeq::commands {

struct BenchInferOptions {
  std::filesystem::path model;  ///< .pdeqint
  deploy::InferBenchOptions bench;
};

struct BenchInferResult {
  nlohmann::json figures;  ///< deploy::bench_infer's table: one row per threads x batch size
  nlohmann::json to_json() const { return figures; }
};

BenchInferResult bench_infer(const BenchInferOptions& options);

}  // namespace pdeq::commands
