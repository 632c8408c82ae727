// A sweep file and its expansion into named, validated points (one run folder each).
//
// Sweep file (JSON; paths relative to the sweep file):
//   {
//     "base": "../cora_pdegcn_sym_a4.json",                 // the config every point starts from
//     "set": ["train.epochs=200", "model.layers=8"],        // overrides shared by every point (--set form)
//     "points": [["model.name=pde_gcn"], ["model.name=pde_gcn_nonsym"]],   // explicit variants
//     "grid": {"quant.act_bits": [32, 4, 2],                // cartesian product of the axes ...
//              "quant.weight_bits,quant.act_bits": [[8, 8], [4, 4]]},   // ... a "k1,k2" axis moves together
//     "seeds": 3,                                            // or [1, 2, 3]: train.seed of each point
//     "search": {...}                                        // see pdeq/sweep/search.h
//   }
// Points = points x grid x search trials x seeds, each "points" entry, grid axis, trial and seed in that
// order; a missing part contributes one empty factor.
#pragma once

#include <pdeq/config/config.h>
#include <pdeq/sweep/search.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pdeq::sweep {

/// One grid axis: `keys` (one, or several that move together) and, per step, one value per key.
struct GridAxis {
  std::vector<std::string> keys;
  std::vector<std::vector<nlohmann::json>> values;
};

/// A parsed sweep file (not yet expanded).
struct SweepSpec {
  std::string source;                            ///< the sweep file; errors name it
  std::string base;                              ///< base config path (resolved against the sweep file)
  std::vector<std::string> set;                  ///< "a.b=value" for every point
  std::vector<std::vector<std::string>> points;  ///< explicit variants, each a list of "a.b=value"
  std::vector<GridAxis> grid;
  std::vector<uint64_t> seeds;  ///< empty: the base config's train.seed, no "seed=" in names
  SearchSpec search;            ///< trials == 0: no search
};

/// One run of a sweep.
struct Point {
  std::string name;   ///< run folder name, e.g. "model.name=pde_gcn,quant.act_bits=4,seed=1"
  std::string group;  ///< name without the seed: points that differ only in their seed
  /// Keys that define the point's configuration (the points' and grid's keys, not trials or seeds); search
  /// selection picks the best trial per distinct value of these.
  std::vector<std::string> configuration_keys;
  std::vector<std::string> overrides;  ///< "a.b=value" applied to the base after `set`, in order
  config::Config config;               ///< resolved and validated
};

/// Reads and checks a sweep file's structure; errors are config::ConfigError naming `path` and the key.
SweepSpec load_sweep(const std::string& path);

/// Every point, each applied to the base and validated (config rules, model name for the dataset, one seed
/// per run) before anything runs: the first bad point throws config::ConfigError naming the sweep file, the
/// point and the key. Duplicate names are an error.
std::vector<Point> expand_sweep(const SweepSpec& spec);

/// "key=value" as used in point names: strings without quotes, numbers and booleans as JSON.
std::string name_part(const std::string& key, const nlohmann::json& value);

/// Makes `name` safe as one folder name: '/', whitespace and control characters become '_'; names longer
/// than 200 characters are cut and end in a hash of the whole name (still unique).
std::string safe_folder_name(const std::string& name);

/// A JSON document as "a.b.c" -> leaf value (objects are descended, arrays are leaves), sorted by key.
std::map<std::string, nlohmann::json> flatten(const nlohmann::json& document);

}  // namespace pdeq::sweep
