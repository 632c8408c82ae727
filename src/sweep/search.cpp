#include <pdeq/sweep/search.h>

#include <pdeq/config/config.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace pdeq::sweep {
namespace {

using config::ConfigError;
using nlohmann::json;

std::string shown(const json& value) {
  std::string text = value.dump();
  return text.size() > 60 ? text.substr(0, 57) + "..." : text;
}

/// [low, high] of a range param, checked.
std::pair<double, double> bounds(const json& range, const std::string& where) {
  if (!range.is_array() || range.size() != 2 || !range[0].is_number() || !range[1].is_number()) {
    throw ConfigError(where + ": expected [low, high] (two numbers), got " + shown(range));
  }
  const double low = range[0].get<double>(), high = range[1].get<double>();
  if (!(low < high)) throw ConfigError(where + ": expected low < high, got " + shown(range));
  return {low, high};
}

/// The radical inverse of `index` in `base`: the van der Corput sequence, one Halton coordinate.
double radical_inverse(uint64_t index, uint64_t base) {
  double result = 0, fraction = 1.0 / static_cast<double>(base);
  while (index > 0) {
    result += static_cast<double>(index % base) * fraction;
    index /= base;
    fraction /= static_cast<double>(base);
  }
  return result;
}

uint64_t nth_prime(size_t n) {
  static const uint64_t primes[] = {2,  3,  5,  7,  11, 13, 17, 19, 23, 29,
                                    31, 37, 41, 43, 47, 53, 59, 61, 67, 71};
  if (n >= sizeof primes / sizeof primes[0]) {
    throw ConfigError("search: the halton sampler supports at most 20 params");
  }
  return primes[n];
}

}  // namespace

SearchSpec parse_search(const json& section, const std::string& source) {
  const std::string at = source + ": search";
  if (!section.is_object()) throw ConfigError(at + ": expected an object, got " + shown(section));
  SearchSpec spec;
  for (const auto& [key, value] : section.items()) {
    const std::string where = at + "." + key;
    if (key == "trials") {
      if (!value.is_number_integer() || value.get<int64_t>() < 1 || value.get<int64_t>() > kMaxSweepPoints) {
        throw ConfigError(where + ": expected an integer in [1, " + std::to_string(kMaxSweepPoints) +
                          "], got " + shown(value));
      }
      spec.trials = value.get<int64_t>();
    } else if (key == "sampler") {
      if (!value.is_string() || (value != "random" && value != "halton")) {
        throw ConfigError(where + ": expected one of \"random\", \"halton\", got " + shown(value));
      }
      spec.sampler = value.get<std::string>();
    } else if (key == "seed") {
      if (!value.is_number_unsigned())
        throw ConfigError(where + ": expected an integer >= 0, got " + shown(value));
      spec.seed = value.get<uint64_t>();
    } else if (key == "params") {
      if (!value.is_object() || value.empty()) {
        throw ConfigError(where + ": expected a non-empty object of key -> range, got " + shown(value));
      }
      for (const auto& [param_key, range] : value.items()) {
        const std::string param_at = where + "." + param_key;
        if (!range.is_object() || range.size() != 1) {
          throw ConfigError(param_at +
                            ": expected one of {\"uniform\": [lo, hi]}, {\"log_uniform\": [lo, hi]}, "
                            "{\"int_uniform\": [lo, hi]}, {\"choice\": [values]}, got " +
                            shown(range));
        }
        SearchParam param;
        param.key = param_key;
        const std::string kind = range.begin().key();
        const json& arg = range.begin().value();
        const std::string kind_at = param_at + "." + kind;
        if (kind == "uniform" || kind == "log_uniform" || kind == "int_uniform") {
          std::tie(param.low, param.high) = bounds(arg, kind_at);
          param.kind = kind == "uniform"       ? SearchParam::Kind::kUniform
                       : kind == "log_uniform" ? SearchParam::Kind::kLogUniform
                                               : SearchParam::Kind::kIntUniform;
          if (param.kind == SearchParam::Kind::kLogUniform && param.low <= 0) {
            throw ConfigError(kind_at + ": expected 0 < low < high, got " + shown(arg));
          }
          if (param.kind == SearchParam::Kind::kIntUniform &&
              (!arg[0].is_number_integer() || !arg[1].is_number_integer())) {
            throw ConfigError(kind_at + ": expected two integers, got " + shown(arg));
          }
        } else if (kind == "choice") {
          if (!arg.is_array() || arg.empty()) {
            throw ConfigError(kind_at + ": expected a non-empty array of values, got " + shown(arg));
          }
          param.kind = SearchParam::Kind::kChoice;
          param.choices.assign(arg.begin(), arg.end());
        } else {
          throw ConfigError(param_at + ": " + kind +
                            ": unknown range (allowed: uniform, log_uniform, int_uniform, choice)");
        }
        spec.params.push_back(std::move(param));
      }
    } else {
      throw ConfigError(where + ": unknown key (allowed: trials, sampler, seed, params)");
    }
  }
  if (spec.trials == 0) throw ConfigError(at + ".trials: missing (the number of trials per configuration)");
  if (spec.params.empty()) throw ConfigError(at + ".params: missing (the searched keys and their ranges)");
  if (spec.sampler == "halton") nth_prime(spec.params.size() - 1);  // throws when there are too many
  return spec;
}

json map_unit(const SearchParam& param, double u) {
  u = std::clamp(u, 0.0, std::nextafter(1.0, 0.0));
  switch (param.kind) {
    case SearchParam::Kind::kUniform:
      return std::min(param.low + u * (param.high - param.low), std::nextafter(param.high, param.low));
    case SearchParam::Kind::kLogUniform: {
      const double value = std::exp(std::log(param.low) + u * (std::log(param.high) - std::log(param.low)));
      return std::clamp(value, param.low, std::nextafter(param.high, param.low));
    }
    case SearchParam::Kind::kIntUniform: {
      const auto low = static_cast<int64_t>(param.low), high = static_cast<int64_t>(param.high);
      const auto value = low + static_cast<int64_t>(std::floor(u * static_cast<double>(high - low + 1)));
      return std::clamp(value, low, high);
    }
    case SearchParam::Kind::kChoice: {
      const auto n = param.choices.size();
      return param.choices[std::min(n - 1, static_cast<size_t>(std::floor(u * static_cast<double>(n))))];
    }
  }
  return nullptr;
}

std::vector<std::vector<json>> sample_trials(const SearchSpec& spec) {
  std::vector<std::vector<json>> trials;
  // mt19937_64's output sequence is fixed by the standard; the conversion to [0, 1) is ours (53 bits).
  std::mt19937_64 engine(spec.seed);
  for (int64_t t = 0; t < spec.trials; ++t) {
    std::vector<json> row;
    for (size_t p = 0; p < spec.params.size(); ++p) {
      double u;
      if (spec.sampler == "halton") {
        // Skip index 0 (all zeros); the seed shifts the start so that different seeds give different sets.
        u = radical_inverse(spec.seed + static_cast<uint64_t>(t) + 1, nth_prime(p));
      } else {
        u = static_cast<double>(engine() >> 11) * 0x1.0p-53;
      }
      row.push_back(map_unit(spec.params[p], u));
    }
    trials.push_back(std::move(row));
  }
  return trials;
}

}  // namespace pdeq::sweep
