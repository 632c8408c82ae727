#include <pdeq/sweep/spec.h>

#include <pdeq/experiment/task_factory.h>

#include <c10/util/StringUtil.h>

#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

namespace pdeq::sweep {
namespace {

using config::ConfigError;
using nlohmann::json;

/// "a.b=value" for a JSON value: dumped, so that apply_override reads back exactly this value (a string
/// stays a string even when it looks like a number).
std::string assignment(const std::string& key, const json& value) { return key + "=" + value.dump(); }

/// "key=value" of an "a.b=value" assignment for names: the value as written, JSON strings unquoted.
std::string name_of_assignment(const std::string& text) {
  const auto equals = text.find('=');
  const std::string key = text.substr(0, equals), value = text.substr(equals + 1);
  json parsed = json::parse(value, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? text : name_part(key, parsed);
}

std::string key_of(const std::string& text) { return text.substr(0, text.find('=')); }

}  // namespace

std::vector<Point> expand_sweep(const SweepSpec& spec) {
  // The base alone first, so that its own mistakes name the base file.
  const config::Config base_config = config::load_config(spec.base);
  const json base = config::read_json_file(spec.base);

  // Variants: points x grid, each with its name parts and assignments.
  struct Variant {
    std::vector<std::string> parts, overrides, keys;
  };
  std::vector<Variant> variants(1);
  if (!spec.points.empty()) {
    variants.clear();
    for (const auto& point : spec.points) {
      Variant v;
      for (const auto& a : point) {
        v.parts.push_back(name_of_assignment(a));
        v.overrides.push_back(a);
        v.keys.push_back(key_of(a));
      }
      variants.push_back(std::move(v));
    }
  }
  for (const GridAxis& axis : spec.grid) {
    std::vector<Variant> next;
    for (const Variant& v : variants) {
      for (const auto& step : axis.values) {
        Variant w = v;
        for (size_t k = 0; k < axis.keys.size(); ++k) {
          w.parts.push_back(name_part(axis.keys[k], step[k]));
          w.overrides.push_back(assignment(axis.keys[k], step[k]));
          w.keys.push_back(axis.keys[k]);
        }
        next.push_back(std::move(w));
      }
    }
    variants = std::move(next);
  }

  const auto trials = spec.search.trials > 0 ? sample_trials(spec.search) : std::vector<std::vector<json>>{};
  const size_t trial_count = std::max<size_t>(1, trials.size());
  const int trial_digits = static_cast<int>(std::to_string(trials.size()).size());

  std::vector<Point> points;
  std::set<std::string> names;
  for (const Variant& v : variants) {
    for (size_t t = 0; t < trial_count; ++t) {
      Variant w = v;
      if (!trials.empty()) {
        char label[32];
        std::snprintf(label, sizeof label, "trial=%0*zu", trial_digits, t);
        w.parts.push_back(label);
        for (size_t p = 0; p < spec.search.params.size(); ++p) {
          w.overrides.push_back(assignment(spec.search.params[p].key, trials[t][p]));
        }
      }
      const std::string group = w.parts.empty() ? "base" : c10::Join(",", w.parts);
      const std::vector<uint64_t> seeds =
          spec.seeds.empty() ? std::vector<uint64_t>{base_config.train.seed} : spec.seeds;
      for (uint64_t seed : seeds) {
        Point point;
        point.group = group;
        point.name = safe_folder_name(spec.seeds.empty() ? group
                                      : w.parts.empty()  ? "seed=" + std::to_string(seed)
                                                         : group + ",seed=" + std::to_string(seed));
        point.configuration_keys = w.keys;
        point.overrides = w.overrides;
        if (!spec.seeds.empty()) point.overrides.push_back("train.seed=" + std::to_string(seed));

        const std::string source = spec.source + " (point " + point.name + ")";
        json document = base;
        for (const auto& a : spec.set) config::apply_override(document, a, spec.source + ": set");
        for (const auto& a : point.overrides) config::apply_override(document, a, source);
        point.config = config::parse_config(document, source);
        point.config.source = source;
        experiment::validate_config(point.config);
        if (point.config.train.seeds != 1) {
          throw ConfigError(source +
                            ": train.seeds: expected 1 in a sweep (the sweep's \"seeds\" makes one "
                            "point per seed), got " +
                            std::to_string(point.config.train.seeds));
        }
        if (!names.insert(point.name).second) {
          throw ConfigError(spec.source + ": two points have the same name " + point.name);
        }
        points.push_back(std::move(point));
      }
    }
  }
  return points;
}

}  // namespace pdeq::sweep
