#include <pdeq/sweep/spec.h>

#include <pdeq/train/task_factory.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>

namespace pdeq::sweep {
namespace {

namespace fs = std::filesystem;
using config::ConfigError;
using nlohmann::json;

std::string shown(const json& value) {
  std::string text = value.dump();
  return text.size() > 60 ? text.substr(0, 57) + "..." : text;
}

std::vector<std::string> split_keys(const std::string& text) {
  std::vector<std::string> keys;
  for (size_t begin = 0;;) {
    const auto comma = text.find(',', begin);
    keys.push_back(text.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin));
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return keys;
}

/// "a.b=value" for a JSON value: dumped, so that apply_override reads back exactly this value (a string
/// stays a string even when it looks like a number).
std::string assignment(const std::string& key, const json& value) { return key + "=" + value.dump(); }

std::vector<std::string> assignments(const json& list, const std::string& where) {
  if (!list.is_array())
    throw ConfigError(where + ": expected an array of \"a.b=value\" strings, got " + shown(list));
  std::vector<std::string> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& item = list[i];
    if (!item.is_string() || item.get<std::string>().find('=') == std::string::npos) {
      throw ConfigError(where + "[" + std::to_string(i) + "]: expected \"a.b=value\", got " + shown(item));
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

/// "key=value" of an "a.b=value" assignment for names: the value as written, JSON strings unquoted.
std::string name_of_assignment(const std::string& text) {
  const auto equals = text.find('=');
  const std::string key = text.substr(0, equals), value = text.substr(equals + 1);
  json parsed = json::parse(value, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? text : name_part(key, parsed);
}

std::string key_of(const std::string& text) { return text.substr(0, text.find('=')); }

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

}  // namespace

std::string name_part(const std::string& key, const json& value) {
  return key + "=" + (value.is_string() ? value.get<std::string>() : value.dump());
}

std::string safe_folder_name(const std::string& name) {
  std::string out = name;
  for (char& c : out) {
    if (c == '/' || c == '\\' || static_cast<unsigned char>(c) <= ' ' || c == 0x7f) c = '_';
  }
  if (out == "." || out == "..") out = "_" + out;
  constexpr size_t kMaxChars = 200;
  if (out.size() > kMaxChars) {
    // FNV-1a of the whole name keeps cut names unique.
    uint64_t hash = 1469598103934665603ull;
    for (unsigned char c : name) hash = (hash ^ c) * 1099511628211ull;
    char suffix[20];
    std::snprintf(suffix, sizeof suffix, "~%016llx", static_cast<unsigned long long>(hash));
    out = out.substr(0, kMaxChars - 17) + suffix;
  }
  return out;
}

std::map<std::string, json> flatten(const json& document) {
  std::map<std::string, json> out;
  std::function<void(const json&, const std::string&)> walk = [&](const json& node, const std::string& path) {
    if (node.is_object() && !node.empty()) {
      for (const auto& [key, value] : node.items()) walk(value, path.empty() ? key : path + "." + key);
    } else {
      out[path] = node;
    }
  };
  walk(document, "");
  return out;
}

SweepSpec load_sweep(const std::string& path) {
  const json document = config::read_json_file(path);
  if (!document.is_object())
    throw ConfigError(path + ": expected an object at the top level, got " + shown(document));
  SweepSpec spec;
  spec.source = path;
  for (const auto& [key, value] : document.items()) {
    const std::string where = path + ": " + key;
    if (key == "base") {
      if (!value.is_string() || value.get<std::string>().empty()) {
        throw ConfigError(where + ": expected the path of a config file, got " + shown(value));
      }
      const fs::path base = value.get<std::string>();
      spec.base =
          (base.is_absolute() ? base : fs::path(path).parent_path() / base).lexically_normal().string();
    } else if (key == "set") {
      spec.set = assignments(value, where);
    } else if (key == "points") {
      if (!value.is_array() || value.empty()) {
        throw ConfigError(where + ": expected a non-empty array of override lists, got " + shown(value));
      }
      for (size_t i = 0; i < value.size(); ++i) {
        spec.points.push_back(assignments(value[i], where + "[" + std::to_string(i) + "]"));
      }
    } else if (key == "grid") {
      if (!value.is_object() || value.empty()) {
        throw ConfigError(where + ": expected an object of key -> array of values, got " + shown(value));
      }
      for (const auto& [axis_key, steps] : value.items()) {
        const std::string axis_at = where + "." + axis_key;
        GridAxis axis;
        axis.keys = split_keys(axis_key);
        if (!steps.is_array() || steps.empty()) {
          throw ConfigError(axis_at + ": expected a non-empty array of values, got " + shown(steps));
        }
        for (const json& step : steps) {
          if (axis.keys.size() == 1) {
            axis.values.push_back({step});
          } else if (step.is_array() && step.size() == axis.keys.size()) {
            axis.values.emplace_back(step.begin(), step.end());
          } else {
            throw ConfigError(axis_at + ": expected arrays of " + std::to_string(axis.keys.size()) +
                              " values (one per key), got " + shown(step));
          }
        }
        spec.grid.push_back(std::move(axis));
      }
    } else if (key == "seeds") {
      if (value.is_number_unsigned() && value.get<uint64_t>() >= 1) {
        for (uint64_t s = 1; s <= value.get<uint64_t>(); ++s) spec.seeds.push_back(s);
      } else if (value.is_array() && !value.empty()) {
        for (const json& s : value) {
          if (!s.is_number_unsigned()) throw ConfigError(where + ": expected integers >= 0, got " + shown(s));
          spec.seeds.push_back(s.get<uint64_t>());
        }
      } else {
        throw ConfigError(where + ": expected a count N >= 1 (seeds 1..N) or a list of seeds, got " +
                          shown(value));
      }
    } else if (key == "search") {
      spec.search = parse_search(value, path);
    } else {
      throw ConfigError(where + ": unknown key (allowed: base, set, points, grid, seeds, search)");
    }
  }
  if (spec.base.empty()) throw ConfigError(path + ": base: missing (the config every point starts from)");
  return spec;
}

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
      const std::string group = w.parts.empty() ? "base" : joined(w.parts);
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
        train::validate_config(point.config);
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
