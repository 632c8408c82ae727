#include "json_reader.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <set>
#include <sstream>

namespace pdeq::config::detail {

namespace {

using nlohmann::json;

/// Messages show at most this many characters of an offending value.
constexpr std::size_t kMaxShownChars = 60;

std::string format_number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

/// Integer bounds of a Range, closed: "> 0" becomes ">= 1", "< 32" becomes "<= 31". long double holds every
/// int64/uint64 exactly, so comparisons below never round.
struct IntBounds {
  std::optional<long double> lo, hi;
};

IntBounds integer_bounds(const Range& r) {
  IntBounds b;
  if (r.lo) b.lo = r.lo_open ? std::floor(*r.lo) + 1 : std::ceil(*r.lo);
  if (r.hi) b.hi = r.hi_open ? std::ceil(*r.hi) - 1 : std::floor(*r.hi);
  return b;
}

bool accepts(const IntBounds& b, long double x) { return (!b.lo || x >= *b.lo) && (!b.hi || x <= *b.hi); }

bool accepts(const Range& r, double x) {
  if (r.lo && (r.lo_open ? !(x > *r.lo) : !(x >= *r.lo))) return false;
  if (r.hi && (r.hi_open ? !(x < *r.hi) : !(x <= *r.hi))) return false;
  return true;
}

std::string integer_phrase(const std::string& noun, const Range& r) {
  const IntBounds b = integer_bounds(r);
  auto text = [](long double v) { return std::to_string(static_cast<long long>(v)); };
  if (b.lo && b.hi) return noun + " in [" + text(*b.lo) + ", " + text(*b.hi) + "]";
  if (b.lo) return noun + " >= " + text(*b.lo);
  if (b.hi) return noun + " <= " + text(*b.hi);
  return noun;
}

std::string number_phrase(const Range& r) {
  const std::string noun = "a number";
  if (r.lo && r.hi) {
    return noun + " in " + (r.lo_open ? "(" : "[") + format_number(*r.lo) + ", " + format_number(*r.hi) +
           (r.hi_open ? ")" : "]");
  }
  if (r.lo) return noun + (r.lo_open ? " > " : " >= ") + format_number(*r.lo);
  if (r.hi) return noun + (r.hi_open ? " < " : " <= ") + format_number(*r.hi);
  return noun;
}

std::string join(const std::vector<std::string>& items, const std::string& separator, bool quote) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += quote ? json(items[i]).dump() : items[i];
  }
  return out;
}

}  // namespace

// ---- helpers ----------------------------------------------------------------------------------------------

std::string rule_phrase(int64_t, const Range& rule) { return integer_phrase("an integer", rule); }
std::string rule_phrase(uint64_t, const Range& rule) {
  return integer_phrase("a non-negative integer", rule);
}
std::string rule_phrase(double, const Range& rule) { return number_phrase(rule); }
std::string rule_phrase(const OneOf& rule) { return "one of " + join(rule.values, ", ", true); }

std::size_t edit_distance(const std::string& a, const std::string& b) {
  // d[i][j]: distance between the first i characters of a and the first j of b.
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::string nearest(const std::string& key, const std::vector<std::string>& candidates) {
  // About one typo per three characters is still recognisable; more is a different word.
  const std::size_t threshold = std::max<std::size_t>(1, (key.size() + 2) / 3);
  std::string best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const auto& candidate : candidates) {
    const std::size_t distance = edit_distance(key, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (best_distance <= threshold) return best;
  // "batch" for "batch_size": a truncated name is also a plausible slip.
  if (key.size() >= 3) {
    for (const auto& candidate : candidates) {
      if (candidate.compare(0, key.size(), key) == 0) return candidate;
    }
  }
  return "";
}

std::string unknown_key_message(const std::string& source, const std::string& path, const std::string& key,
                                const std::vector<std::string>& allowed) {
  std::string message = source + ": " + join_path(path, key) + ": unknown key";
  const std::string suggestion = nearest(key, allowed);
  if (!suggestion.empty()) message += "; did you mean '" + suggestion + "'?";
  message += " (allowed: " + join(allowed, ", ", false) + ")";
  return message;
}

std::string show(const json& value) {
  // replace: a value with invalid UTF-8 must still be reportable.
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxShownChars) text = text.substr(0, kMaxShownChars - 3) + "...";
  return text;
}

std::string join_path(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

json read_json_file(const std::string& path) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) {
    throw ConfigError(path + ": cannot open config file (it is a directory)");
  }
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open config file");

  // nlohmann keeps the last of duplicate keys silently; a strict config rejects them. The callback sees every
  // object start/end and key, so a stack of the keys seen per open object finds them.
  struct Frame {
    bool is_object;
    std::string key;
    std::set<std::string> seen;
  };
  std::vector<Frame> stack;
  auto dotted = [&stack] {
    std::string out;
    for (const auto& frame : stack) {
      if (frame.is_object) out = join_path(out, frame.key);
    }
    return out;
  };
  json::parser_callback_t check_duplicates = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        stack.push_back({true, {}, {}});
        break;
      case json::parse_event_t::array_start:
        stack.push_back({false, {}, {}});
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        stack.pop_back();
        break;
      case json::parse_event_t::key: {
        Frame& frame = stack.back();
        frame.key = parsed.get<std::string>();
        if (!frame.seen.insert(frame.key).second)
          throw ConfigError(path + ": " + dotted() + ": duplicate key");
        break;
      }
      case json::parse_event_t::value:
        break;
    }
    return true;
  };

  try {
    return json::parse(in, check_duplicates);
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number too large for a double (found by fuzzing). what() is
    // "[json.exception.parse_error.101] parse error at line 3, column 5: ..."; the tag is noise here.
    std::string message = e.what();
    const auto tag_end = message.find("] ");
    if (tag_end != std::string::npos) message = message.substr(tag_end + 2);
    throw ConfigError(path + ": invalid JSON: " + message);
  }
}

// ---- Reader -----------------------------------------------------------------------------------------------

Reader::Reader(const json& object, std::string source, std::string path)
    : object_(object), source_(std::move(source)), path_(std::move(path)) {}

const json* Reader::take(const std::string& key) {
  known_.push_back(key);
  const auto it = object_.find(key);
  return it == object_.end() ? nullptr : &*it;
}

void Reader::fail(const std::string& key, const std::string& expectation, const json& got) const {
  throw ConfigError(source_ + ": " + join_path(path_, key) + ": expected " + expectation + ", got " +
                    show(got));
}

void Reader::field(const std::string& key, int64_t& out, const Range& rule) {
  const json* value = take(key);
  if (value == nullptr) return;
  const std::string expectation = rule_phrase(int64_t{}, rule);
  // is_number_integer() is false for 3.5 and "3", and for booleans.
  if (!value->is_number_integer()) fail(key, expectation, *value);
  if (value->is_number_unsigned() &&
      value->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    fail(key, expectation, *value);
  }
  const int64_t x = value->get<int64_t>();
  if (!accepts(integer_bounds(rule), static_cast<long double>(x))) fail(key, expectation, *value);
  out = x;
}

void Reader::field(const std::string& key, uint64_t& out, const Range& rule) {
  const json* value = take(key);
  if (value == nullptr) return;
  const std::string expectation = rule_phrase(uint64_t{}, rule);
  if (!value->is_number_integer()) fail(key, expectation, *value);
  // The parser stores non-negative literals as unsigned; a document built in code may hold a signed one.
  if (!value->is_number_unsigned() && value->get<int64_t>() < 0) fail(key, expectation, *value);
  const uint64_t x = value->get<uint64_t>();
  if (!accepts(integer_bounds(rule), static_cast<long double>(x))) fail(key, expectation, *value);
  out = x;
}

void Reader::field(const std::string& key, double& out, const Range& rule) {
  const json* value = take(key);
  if (value == nullptr) return;
  const std::string expectation = rule_phrase(double{}, rule);
  if (!value->is_number()) fail(key, expectation, *value);  // integers are numbers too
  const double x = value->get<double>();
  if (!accepts(rule, x)) fail(key, expectation, *value);
  out = x;
}

void Reader::field(const std::string& key, bool& out) {
  const json* value = take(key);
  if (value == nullptr) return;
  if (!value->is_boolean()) fail(key, "true or false", *value);
  out = value->get<bool>();
}

void Reader::field(const std::string& key, std::string& out) {
  const json* value = take(key);
  if (value == nullptr) return;
  if (!value->is_string()) fail(key, "a string", *value);
  out = value->get<std::string>();
}

void Reader::field(const std::string& key, std::string& out, const OneOf& rule) {
  const json* value = take(key);
  if (value == nullptr) return;
  const std::string expectation = rule_phrase(rule);
  if (!value->is_string()) fail(key, expectation, *value);
  const auto text = value->get<std::string>();
  if (std::find(rule.values.begin(), rule.values.end(), text) == rule.values.end()) {
    fail(key, expectation, *value);
  }
  out = text;
}

void Reader::field(const std::string& key, std::string& out, NonEmpty) {
  const json* value = take(key);
  if (value == nullptr) return;
  if (!value->is_string() || value->get_ref<const std::string&>().empty()) {
    fail(key, "a non-empty string", *value);
  }
  out = value->get<std::string>();
}

void Reader::field(const std::string& key, std::string& out, const Matches& rule) {
  const json* value = take(key);
  if (value == nullptr) return;
  if (!value->is_string() ||
      !std::regex_match(value->get_ref<const std::string&>(), std::regex(rule.pattern))) {
    fail(key, rule.phrase, *value);
  }
  out = value->get<std::string>();
}

void Reader::require(const std::string& key, bool ok, const std::string& expectation, const json& got) const {
  if (!ok) fail(key, expectation, got);
}

void Reader::finish() const {
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (std::find(known_.begin(), known_.end(), it.key()) == known_.end()) {
      throw ConfigError(unknown_key_message(source_, path_, it.key(), known_));
    }
  }
}

}  // namespace pdeq::config::detail
