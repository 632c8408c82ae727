#include <pdeq/sweep/spec.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

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
      const auto max = static_cast<uint64_t>(kMaxSweepPoints);
      if (value.is_number_unsigned() && value.get<uint64_t>() >= 1 && value.get<uint64_t>() <= max) {
        for (uint64_t s = 1; s <= value.get<uint64_t>(); ++s) spec.seeds.push_back(s);
      } else if (value.is_array() && !value.empty()) {
        for (const json& s : value) {
          if (!s.is_number_unsigned()) throw ConfigError(where + ": expected integers >= 0, got " + shown(s));
          spec.seeds.push_back(s.get<uint64_t>());
        }
      } else {
        throw ConfigError(where + ": expected a count N in [1, " + std::to_string(max) +
                          "] (seeds 1..N) or a list of seeds, got " + shown(value));
      }
    } else if (key == "search") {
      spec.search = parse_search(value, path);
    } else {
      throw ConfigError(where + ": unknown key (allowed: base, set, points, grid, seeds, search)");
    }
  }
  if (spec.base.empty()) throw ConfigError(path + ": base: missing (the config every point starts from)");

  // The number of points before making any: each factor is at least 1, the product saturates past the limit.
  std::vector<std::pair<std::string, size_t>> factors{{"points", std::max<size_t>(1, spec.points.size())}};
  for (const GridAxis& axis : spec.grid) factors.emplace_back("grid", axis.values.size());
  factors.emplace_back("trials", static_cast<size_t>(std::max<int64_t>(1, spec.search.trials)));
  factors.emplace_back("seeds", std::max<size_t>(1, spec.seeds.size()));
  const auto limit = static_cast<size_t>(kMaxSweepPoints);
  size_t total = 1;
  std::string product;
  for (const auto& [what, n] : factors) {
    total = n > limit || total > limit / n ? limit + 1 : total * n;
    product += (product.empty() ? "" : " x ") + what + " " + std::to_string(n);
  }
  if (total > limit) {
    throw ConfigError(path + ": the sweep expands to more than " + std::to_string(limit) + " points (" +
                      product + "); split it into several sweep files");
  }
  return spec;
}

}  // namespace pdeq::sweep
