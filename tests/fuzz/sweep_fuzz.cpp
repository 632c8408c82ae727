// Sweep files: load_sweep (structure, points, grid axes, seeds, the search section, the size limit), then
// what expand_sweep derives from them before it reads the base config: the search trials and the point
// names. (Applying and validating each point's overrides is the config target's parser.)
#include <pdeq/sweep/search.h>
#include <pdeq/sweep/spec.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "fuzz_support.h"

namespace {

using pdeq::sweep::SearchParam;

/// Whether `value` lies in `param`'s range (the ends of the float ranges inclusive: rounding of exp/log).
bool in_range(const SearchParam& param, const nlohmann::json& value) {
  switch (param.kind) {
    case SearchParam::Kind::kChoice:
      for (const auto& choice : param.choices) {
        if (choice == value) return true;
      }
      return false;
    case SearchParam::Kind::kIntUniform:
      return value.is_number_integer() && value.get<double>() >= param.low &&
             value.get<double>() <= param.high;
    default:
      return value.is_number() && std::isfinite(value.get<double>()) && value.get<double>() >= param.low &&
             value.get<double>() <= param.high;
  }
}

void check_folder_name(const std::string& name) {
  const std::string safe = pdeq::sweep::safe_folder_name(name);
  if (safe.empty() != name.empty() || safe.size() > 200 || safe == "." || safe == ".." ||
      safe.find('/') != std::string::npos) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = (pdeq::fuzz::scratch("sweep") / "sweep.json").string();
  pdeq::fuzz::write_file(path, std::string(reinterpret_cast<const char*>(data), size));
  pdeq::fuzz::expect_clean_rejection([&] {
    const auto spec = pdeq::sweep::load_sweep(path);
    double points = std::max<double>(1, static_cast<double>(spec.points.size()));
    for (const auto& axis : spec.grid) points *= static_cast<double>(axis.values.size());
    points *= std::max<double>(1, static_cast<double>(spec.search.trials));
    points *= std::max<double>(1, static_cast<double>(spec.seeds.size()));
    if (points > static_cast<double>(pdeq::sweep::kMaxSweepPoints)) std::abort();

    if (spec.search.trials > 0) {
      const auto trials = pdeq::sweep::sample_trials(spec.search);
      if (static_cast<int64_t>(trials.size()) != spec.search.trials) std::abort();
      for (const auto& row : trials) {
        if (row.size() != spec.search.params.size()) std::abort();
        for (size_t p = 0; p < row.size(); ++p) {
          if (!in_range(spec.search.params[p], row[p])) std::abort();
        }
      }
    }
    for (const auto& axis : spec.grid) {
      for (const auto& step : axis.values) {
        for (size_t k = 0; k < axis.keys.size(); ++k) {
          check_folder_name(pdeq::sweep::name_part(axis.keys[k], step[k]));
        }
      }
    }
  });
  return 0;
}
