// Strict, declarative reading of JSON objects into typed fields: the one mechanism behind parse_config.
//
// A section is described once, by a template over the visitor (mlpack RequireParamValue / RequireParamInSet
// style):
//
//   template <class V, class C> void describe_train(V& v, C& c) {
//     v.field("epochs", c.epochs, positive());
//     v.field("lr_schedule", c.lr_schedule, one_of({"cosine", "constant"}));
//   }
//
// The Reader validates and fills a struct (then rejects every key it was not asked for); the Writer turns the
// same description into JSON, so parsing and to_json cannot drift apart.
#pragma once

#include <pdeq/config/config.h>

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace pdeq::config::detail {

// ---- rules ----------------------------------------------------------------------------------------------

/// A numeric rule: optional lower and upper bounds, each closed or open. Integer fields phrase it with closed
/// bounds ("an integer >= 1"), number fields as written ("a number in [0, 1)").
struct Range {
  std::optional<double> lo, hi;
  bool lo_open = false;
  bool hi_open = false;
};
inline Range at_least(double lo) { return {lo, std::nullopt, false, false}; }
inline Range greater_than(double lo) { return {lo, std::nullopt, true, false}; }
inline Range positive() { return greater_than(0); }
inline Range non_negative() { return at_least(0); }
/// [lo, hi]
inline Range in_range(double lo, double hi) { return {lo, hi, false, false}; }
/// [lo, hi)
inline Range in_half_open(double lo, double hi) { return {lo, hi, false, true}; }

/// A string from a fixed set ("one of \"cosine\", \"constant\"").
struct OneOf {
  std::vector<std::string> values;
};
inline OneOf one_of(std::vector<std::string> values) { return {std::move(values)}; }

/// Any string but "".
struct NonEmpty {};
inline NonEmpty non_empty() { return {}; }

/// A string the ECMAScript regular expression `pattern` matches whole; `phrase` says what that is in errors
/// and the reference ("\"cpu\", \"cuda\" or \"cuda:N\"").
struct Matches {
  std::string pattern;
  std::string phrase;
};
inline Matches matches(std::string pattern, std::string phrase) {
  return {std::move(pattern), std::move(phrase)};
}

// ---- helpers shared with overrides ----------------------------------------------------------------------

/// Optimal-string-alignment edit distance (insert, delete, substitute, swap two neighbours: "nmae" -> "name"
/// is 1).
std::size_t edit_distance(const std::string& a, const std::string& b);

/// The candidate closest to `key` when it is close enough to be a plausible typo (or `key` is a prefix of
/// it);
/// "" otherwise.
std::string nearest(const std::string& key, const std::vector<std::string>& candidates);

/// "<source>: <path>: unknown key; did you mean '<x>'? (allowed: a, b, c)".
std::string unknown_key_message(const std::string& source, const std::string& path, const std::string& key,
                                const std::vector<std::string>& allowed);

/// A JSON value as it appears in messages: compact, strings quoted, long values shortened.
std::string show(const nlohmann::json& value);

/// "a.b" from a parent path ("" at the top level) and a key.
std::string join_path(const std::string& parent, const std::string& key);

/// Parses a whole JSON file. Cannot open, syntax errors (with line and column) and duplicate keys in one
/// object throw ConfigError naming `path`.
nlohmann::json read_json_file(const std::string& path);

// ---- visitors ---------------------------------------------------------------------------------------------

/// Validates one JSON object and fills typed fields from it; missing keys keep the field's current value.
class Reader {
 public:
  /// `object` must be a JSON object that outlives the reader; `path` is its JSON path ("" at the top level).
  Reader(const nlohmann::json& object, std::string source, std::string path);

  void field(const std::string& key, int64_t& out, const Range& rule = {});
  void field(const std::string& key, uint64_t& out, const Range& rule = {});
  void field(const std::string& key, double& out, const Range& rule = {});
  void field(const std::string& key, bool& out);
  void field(const std::string& key, std::string& out);
  void field(const std::string& key, std::string& out, const OneOf& rule);
  void field(const std::string& key, std::string& out, NonEmpty rule);
  void field(const std::string& key, std::string& out, const Matches& rule);
  /// An enum-like value (choices.h): one of its names.
  template <typename E, typename = std::enable_if_t<std::is_enum_v<E>>>
  void field(const std::string& key, E& out) {
    std::string name = to_string(out);
    field(key, name, OneOf{choice_names<E>()});
    out = from_string<E>(name);
  }

  /// A nested object read by `describe(Reader&, T&)`; it must be an object and is itself finished.
  template <typename T, typename Describe>
  void section(const std::string& key, T& out, Describe&& describe) {
    const nlohmann::json* value = take(key);
    if (value == nullptr) return;
    if (!value->is_object()) fail(key, "an object", *value);
    Reader child(*value, source_, join_path(path_, key));
    describe(child, out);
    child.finish();
  }

  /// A rule across fields, checked after they were read: when `ok` is false, `key` is reported with
  /// `expectation` and the value `got`.
  void require(const std::string& key, bool ok, const std::string& expectation,
               const nlohmann::json& got) const;

  /// Rejects the first key (nlohmann::json keeps keys sorted) that no field() or section() asked for,
  /// suggesting the nearest known one.
  void finish() const;

  [[noreturn]] void fail(const std::string& key, const std::string& expectation,
                         const nlohmann::json& got) const;

 private:
  /// Records `key` as known; the value, or nullptr when the document does not have it.
  const nlohmann::json* take(const std::string& key);

  const nlohmann::json& object_;
  std::string source_;
  std::string path_;
  std::vector<std::string> known_;  // in declaration order, for "allowed: ..."
};

/// The rule of a field as the Reader's errors phrase it ("an integer >= 1", "one of \"sgd\", \"adam\"").
std::string rule_phrase(int64_t, const Range& rule);
std::string rule_phrase(uint64_t, const Range& rule);
std::string rule_phrase(double, const Range& rule);
std::string rule_phrase(const OneOf& rule);

/// Lists every field of a description with its JSON path, default value and rule: the config reference.
class Documenter {
 public:
  struct Row {
    std::string key;  ///< JSON path, e.g. "train.epochs"
    nlohmann::json default_value;
    std::string rule;  ///< what a file's value must be
  };

  explicit Documenter(std::string path = "") : path_(std::move(path)) {}

  template <typename T>
  void field(const std::string& key, const T& value) {
    if constexpr (std::is_enum_v<T>) {
      add(key, to_string(value), rule_phrase(OneOf{choice_names<T>()}));
    } else if constexpr (std::is_same_v<T, bool>) {
      add(key, value, "true or false");
    } else if constexpr (std::is_same_v<T, std::string>) {
      add(key, value, "a string");
    } else {
      add(key, value, rule_phrase(value, Range{}));
    }
  }
  template <typename T>
  void field(const std::string& key, const T& value, const Range& rule) {
    add(key, value, rule_phrase(value, rule));
  }
  void field(const std::string& key, const std::string& value, const OneOf& rule) {
    add(key, value, rule_phrase(rule));
  }
  void field(const std::string& key, const std::string& value, NonEmpty) {
    add(key, value, "a non-empty string");
  }
  void field(const std::string& key, const std::string& value, const Matches& rule) {
    add(key, value, rule.phrase);
  }

  template <typename T, typename Describe>
  void section(const std::string& key, const T& value, Describe&& describe) {
    Documenter child(join_path(path_, key));
    describe(child, value);
    rows.insert(rows.end(), child.rows.begin(), child.rows.end());
  }

  void require(const std::string&, bool, const std::string&, const nlohmann::json&) const {}

  std::vector<Row> rows;

 private:
  void add(const std::string& key, nlohmann::json value, std::string rule) {
    rows.push_back({join_path(path_, key), std::move(value), std::move(rule)});
  }
  std::string path_;
};

/// Turns a description into JSON (every field, defaults included); rules are the Reader's business.
template <typename Json>
class BasicWriter {
 public:
  template <typename T, typename... Rule>
  void field(const std::string& key, const T& value, const Rule&...) {
    if constexpr (std::is_enum_v<T>) {
      json[key] = to_string(value);
    } else {
      json[key] = value;
    }
  }

  template <typename T, typename Describe>
  void section(const std::string& key, const T& value, Describe&& describe) {
    BasicWriter child;
    describe(child, value);
    json[key] = std::move(child.json);
  }

  void require(const std::string&, bool, const std::string&, const nlohmann::json&) const {}

  Json json = Json::object();
};

}  // namespace pdeq::config::detail
