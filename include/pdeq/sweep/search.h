// Hyper-parameter search: ranges, N trials, a seeded sampler (random or Halton), reproducible.
//
// Sweep file section:
//   "search": {"trials": 20, "sampler": "random" | "halton", "seed": 0,
//              "params": {"train.lr": {"log_uniform": [1e-4, 0.1]}, "model.dropout": {"uniform": [0, 0.8]},
//                         "model.layers": {"int_uniform": [4, 16]}, "train.optimizer": {"choice": ["adam",
//                         "sgd"]}}}
// Trial k has the same sampled values in every configuration of the grid, so configurations are compared on
// the same candidates; the report picks the trial with the best mean validation accuracy per configuration.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace pdeq::sweep {

/// One searched key and its range.
struct SearchParam {
  enum class Kind { kUniform, kLogUniform, kIntUniform, kChoice };
  std::string key;  ///< config key, "a.b"
  Kind kind = Kind::kUniform;
  double low = 0, high = 0;             ///< uniform / log_uniform: [low, high); int_uniform: [low, high]
  std::vector<nlohmann::json> choices;  ///< choice
};

/// The most runs one sweep file may expand to (points x grid x trials x seeds): beyond it, an extra zero in
/// "seeds" or "trials" or one axis too many would take the memory or the years it asks for; split such a
/// sweep.
inline constexpr int64_t kMaxSweepPoints = 100'000;

struct SearchSpec {
  int64_t trials = 0;  ///< 0: no search
  std::string sampler =
      "random";  ///< random (uniform pseudo-random) | halton (low-discrepancy: even coverage)
  uint64_t seed = 0;
  std::vector<SearchParam> params;  ///< sorted by key
};

/// Parses the "search" section; errors (config::ConfigError) name `source` and the JSON path.
SearchSpec parse_search(const nlohmann::json& section, const std::string& source);

/// `spec.trials` rows of one value per param, in spec.params order. Deterministic for (spec, seed) on every
/// platform (no std:: distributions); every value lies in its range.
std::vector<std::vector<nlohmann::json>> sample_trials(const SearchSpec& spec);

/// Maps u in [0, 1) into `param`'s range.
nlohmann::json map_unit(const SearchParam& param, double u);

}  // namespace pdeq::sweep
