// The config schema: every section's fields with their rules, described once and used for parsing, to_json
// and the key checks of overrides.
#include <pdeq/config/config.h>

#include "json_reader.h"

namespace pdeq::config {

namespace {

using detail::in_half_open;
using detail::in_range;
using detail::matches;
using detail::non_empty;
using detail::non_negative;
using detail::one_of;
using detail::positive;
using nlohmann::json;

// Bit widths: 32 means full precision (the quantizer passes values through). Weights are signed, and a signed
// grid needs 2 bits (ternary {-a, 0, a}); binary (sign) weights are not implemented, so 1 is refused here
// rather than at model construction. Unsigned and mid-rise activations have a 1-bit grid.
constexpr double kMinBits = 1;
constexpr double kMinWeightBits = 2;
constexpr double kMaxBits = 32;

template <class V, class C>
void describe_tv(V& v, C& c) {
  v.field("enabled", c.enabled);
  v.field("iters", c.iters, in_range(1, 100));
  v.field("gamma_init", c.gamma_init, non_negative());
  v.field("eps", c.eps, positive());
  v.field("weight", c.weight);
  v.field("where", c.where);
}

template <class V, class C>
void describe_model(V& v, C& c) {
  // The model registry validates the name itself; config sits below models and must not depend on it.
  v.field("name", c.name, non_empty());
  v.field("step_size", c.step_size, positive());
  v.field("stable", c.stable);
  v.field("transpose", c.transpose);
  v.field("stem", c.stem);
  v.section("tv", c.tv, [](auto& s, auto& tv) { describe_tv(s, tv); });
  // The graph keys stay directly under `model` in files (a sub-object only in C++).
  auto& g = c.graph;
  v.field("channels", g.channels, positive());
  v.field("layers", g.layers, non_negative());
  v.field("dropout", g.dropout, in_half_open(0, 1));
  v.field("input_dropout", g.input_dropout, in_half_open(0, 1));
  v.field("graph_bias", g.bias);
  v.field("graph_init", g.init);
  v.field("edge_activation", g.edge_activation);
  v.field("dropout_on_edges", g.dropout_on_edges);
  v.field("quantize_input", g.quantize_input);
  v.field("quantize_gradient", g.quantize_gradient);
  v.field("quantize_edges", g.quantize_edges);
}

template <class V, class C>
void describe_data(V& v, C& c) {
  v.field("dataset", c.dataset,
          one_of({"cifar10", "cifar100", "fashion_mnist", "mnist", "image_folder", "camvid", "cityscapes",
                  "cora", "citeseer", "pubmed"}));
  v.field("root", c.root);
  v.field("val_size", c.val_size, non_negative());
  v.field("split_seed", c.split_seed);
  v.field("limit_train", c.limit_train, non_negative());
  v.field("limit_val", c.limit_val, non_negative());
  v.field("limit_test", c.limit_test, non_negative());
  v.field("augment", c.augment);
  v.field("batch_size", c.batch_size, positive());
  v.field("eval_batch_size", c.eval_batch_size, positive());
  // Each prefetched batch is a full tensor in memory; more than a few never helps a single trainer.
  v.field("prefetch", c.prefetch, in_range(0, 64));
  v.field("normalize_features", c.normalize_features);
  v.field("edge_weights", c.edge_weights);
  v.field("normalization", c.normalization);
  v.field("workers", c.workers, in_range(0, 256));
  v.field("resize", c.resize, positive());
  v.field("image_size", c.image_size, positive());
  v.field("random_resized_crop", c.random_resized_crop);
  v.field("skip_bad_images", c.skip_bad_images);
  v.field("max_image_pixels", c.max_image_pixels, positive());
  v.field("scale_min", c.scale_min, positive());
  v.field("scale_max", c.scale_max, positive());
  v.field("class_weights", c.class_weights);
  // Image folders have no default location, and a crop larger than the resized image does not exist.
  v.require("root", c.dataset != "image_folder" || !c.root.empty(),
            "the folder holding train/<class>/ and val/<class>/ when data.dataset is image_folder",
            json(c.root));
  v.require("scale_max", c.scale_min <= c.scale_max,
            "a number >= data.scale_min (" + json(c.scale_min).dump() + ")", json(c.scale_max));
  v.require("image_size", c.image_size <= c.resize,
            "an integer <= data.resize (" + std::to_string(c.resize) + ")", json(c.image_size));
}

template <class V, class C>
void describe_schedule(V& v, C& c) {
  v.field("enabled", c.enabled);
  // Starting at 1 bit would leave nothing to lower; the paper starts at 16.
  v.field("start_bits", c.start_bits, in_range(2, kMaxBits));
  v.field("step", c.step, positive());
  v.field("period_epochs", c.period_epochs, positive());
  v.field("timing", c.timing);
}

template <class V, class C>
void describe_quant(V& v, C& c) {
  v.field("weight_bits", c.weight_bits, in_range(kMinWeightBits, kMaxBits));
  v.field("act_bits", c.act_bits, in_range(kMinBits, kMaxBits));
  v.field("weight_alpha_init", c.weight_alpha_init, positive());
  v.field("act_alpha_init", c.act_alpha_init, positive());
  v.field("weight_standardize", c.weight_standardize);
  v.field("per_channel", c.per_channel);
  v.field("signed_activations", c.signed_activations);
  v.field("midrise_activations", c.midrise_activations);
  v.section("schedule", c.schedule, [](auto& s, auto& schedule) { describe_schedule(s, schedule); });
  // A signed activation grid, like the weights', has no 1-bit form (the mid-rise grid has: {-a, a}).
  v.require("act_bits", c.act_bits >= 2 || !c.signed_activations || c.midrise_activations,
            "an integer in [2, 32] when quant.signed_activations is true (1 bit needs "
            "quant.midrise_activations)",
            json(c.act_bits));
}

template <class V, class C>
void describe_group(V& v, C& c, bool with_prefix) {
  v.field("enabled", c.enabled);
  if (with_prefix) v.field("prefix", c.prefix);
  v.field("lr", c.lr, non_negative());
  v.field("weight_decay", c.weight_decay, non_negative());
  if (with_prefix) {
    v.require("prefix", !c.enabled || !c.prefix.empty(), "a non-empty parameter-name prefix when enabled",
              json(c.prefix));
  }
}

template <class V, class C>
void describe_distillation(V& v, C& c) {
  v.field("enabled", c.enabled);
  v.field("high_bits", c.high_bits, in_range(kMinBits, kMaxBits));
  v.field("activation_loss", c.activation_loss, non_negative());
}

template <class V, class C>
void describe_train(V& v, C& c) {
  v.field("epochs", c.epochs, positive());
  v.field("optimizer", c.optimizer);
  v.field("lr", c.lr, positive());
  v.field("momentum", c.momentum, in_half_open(0, 1));
  v.field("nesterov", c.nesterov);
  v.field("weight_decay", c.weight_decay, non_negative());
  v.field("decay_scales_norms_biases", c.decay_scales_norms_biases);
  v.field("lr_schedule", c.lr_schedule);
  v.field("lr_step", c.lr_step);
  v.field("warmup_epochs", c.warmup_epochs, non_negative());
  v.field("min_lr", c.min_lr, non_negative());
  v.field("label_smoothing", c.label_smoothing, in_half_open(0, 1));
  v.field("seed", c.seed);
  v.field("threads", c.threads, non_negative());
  // Whether the device exists is the run's question (experiment::run_device), not the file's.
  v.field("device", c.device, matches("auto|cpu|cuda(:[0-9]+)?", R"("auto", "cpu", "cuda" or "cuda:N")"));
  v.field("memory_format", c.memory_format);
  v.field("precision", c.precision);
  v.field("log_every", c.log_every, positive());
  v.field("beta1", c.beta1, in_half_open(0, 1));
  v.field("beta2", c.beta2, in_half_open(0, 1));
  v.section("scale_group", c.scale_group, [](auto& s, auto& g) { describe_group(s, g, false); });
  v.section("layer_group", c.layer_group, [](auto& s, auto& g) { describe_group(s, g, true); });
  v.field("eval_every", c.eval_every, positive());
  v.field("checkpoint_every", c.checkpoint_every, positive());
  v.field("metrics_every", c.metrics_every, positive());
  v.field("plot_every", c.plot_every, positive());
  v.field("tensorboard", c.tensorboard);
  v.field("patience", c.patience, non_negative());
  v.field("seeds", c.seeds, in_range(1, 1000));
  v.section("distillation", c.distillation, [](auto& s, auto& d) { describe_distillation(s, d); });

  // A warm-up as long as the run would never reach the configured learning rate.
  v.require("warmup_epochs", c.warmup_epochs < static_cast<double>(c.epochs),
            "a number < train.epochs (" + std::to_string(c.epochs) + ")", json(c.warmup_epochs));
  // torch::optim::SGD refuses Nesterov without momentum; say so in config terms instead.
  v.require("nesterov", !c.nesterov || c.momentum > 0, "false when train.momentum is 0", json(c.nesterov));
}

template <class V, class C>
void describe_config(V& v, C& c) {
  v.section("model", c.model, [](auto& s, auto& section) { describe_model(s, section); });
  v.section("data", c.data, [](auto& s, auto& section) { describe_data(s, section); });
  v.section("quant", c.quant, [](auto& s, auto& section) { describe_quant(s, section); });
  v.section("train", c.train, [](auto& s, auto& section) { describe_train(s, section); });
}

/// Every key of a config with its default value, in declaration order: what overrides may name.
const nlohmann::ordered_json& schema() {
  static const nlohmann::ordered_json instance = [] {
    detail::BasicWriter<nlohmann::ordered_json> writer;
    const Config defaults;
    describe_config(writer, defaults);
    return writer.json;
  }();
  return instance;
}

std::vector<std::string> keys_of(const nlohmann::ordered_json& object) {
  std::vector<std::string> keys;
  for (auto it = object.begin(); it != object.end(); ++it) keys.push_back(it.key());
  return keys;
}

}  // namespace

Config parse_config(const json& document, const std::string& source) {
  if (!document.is_object()) {
    throw ConfigError(source + ": expected an object at the top level, got " + detail::show(document));
  }
  Config config;
  detail::Reader reader(document, source, "");
  describe_config(reader, config);
  reader.finish();
  config.source = source;
  return config;
}

void apply_override(json& document, const std::string& assignment, const std::string& source) {
  const std::string syntax_error =
      source + ": expected key=value (e.g. train.epochs=3), got " + detail::show(json(assignment));
  const auto equals = assignment.find('=');
  if (equals == std::string::npos) throw ConfigError(syntax_error);
  const std::string key = assignment.substr(0, equals);
  const std::string text = assignment.substr(equals + 1);

  std::vector<std::string> parts;
  for (std::size_t begin = 0;;) {
    const auto dot = key.find('.', begin);
    parts.push_back(key.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin));
    if (dot == std::string::npos) break;
    begin = dot + 1;
  }
  for (const auto& part : parts) {
    if (part.empty()) throw ConfigError(syntax_error);  // "", ".a", "a..b", "a."
  }

  // "3", "false", "[1,2]", "\"x\"" are JSON; "/tmp/x" and "resnet56" are not and are meant as strings.
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) value = text;

  if (document.is_null()) document = json::object();
  if (!document.is_object()) {
    throw ConfigError(source + ": expected an object at the top level, got " + detail::show(document));
  }
  json* node = &document;
  const nlohmann::ordered_json* allowed = &schema();
  std::string path;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    if (!allowed->is_object()) {
      throw ConfigError(source + ": " + detail::join_path(path, part) + ": unknown key; " + path +
                        " is a value, not a section");
    }
    if (!allowed->contains(part)) {
      throw ConfigError(detail::unknown_key_message(source, path, part, keys_of(*allowed)));
    }
    path = detail::join_path(path, part);
    allowed = &(*allowed)[part];
    if (i + 1 == parts.size()) {
      (*node)[part] = std::move(value);
      break;
    }
    json& child = (*node)[part];  // creates null when the document leaves the section out
    if (child.is_null()) child = json::object();
    if (!child.is_object())
      throw ConfigError(source + ": " + path + ": expected an object, got " + detail::show(child));
    node = &child;
  }
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  json document = detail::read_json_file(path);
  // The file alone first, so that its own mistakes are reported against it and not against --set.
  Config config = parse_config(document, path);
  if (overrides.empty()) return config;
  for (const auto& assignment : overrides) apply_override(document, assignment, "--set");
  config = parse_config(document, "--set");
  config.source = path;
  config.overrides = overrides;
  return config;
}

Config config_from_overrides(const std::vector<std::string>& overrides) {
  json document = json::object();
  for (const auto& assignment : overrides) apply_override(document, assignment, "--set");
  Config config = parse_config(document, "--set");
  config.overrides = overrides;
  return config;
}

bool key_within(const std::string& key, const std::string& section) {
  return key == section || (key.size() > section.size() && key.compare(0, section.size(), section) == 0 &&
                            key[section.size()] == '.');
}

std::string source_of(const Config& config, const std::string& key) {
  for (auto it = config.overrides.rbegin(); it != config.overrides.rend(); ++it) {
    // The key itself or a section above it ("model.tv={...}" sets model.tv.where).
    if (key_within(key, it->substr(0, it->find('=')))) return "--set " + *it;
  }
  return config.source;
}

json read_json_file(const std::string& path) { return detail::read_json_file(path); }

json to_json(const Config& config) {
  detail::BasicWriter<json> writer;
  describe_config(writer, config);
  return writer.json;
}

std::string reference_markdown() {
  detail::Documenter documenter;
  const Config defaults;
  describe_config(documenter, defaults);
  std::string out =
      "# Config reference\n\n"
      "Every key of a pdeq config file, with its default and what a value must be. A file sets any subset; "
      "`--set key.path=value` sets one key on the command line (values are JSON; bare words are strings). "
      "Unknown keys and values outside these rules are errors naming the file and the key. Rules across keys "
      "(e.g. `data.image_size` <= `data.resize`, `train.warmup_epochs` < `train.epochs`) are checked too, "
      "and a "
      "key the chosen model or dataset does not read (`model.layers` for resnet20, `model.tv` for pde_gcn, "
      "`data.edge_weights` for cifar10) is refused when set to anything but its default. "
      "`model.name` is one of the registered models (`pdeq params --help` lists them); `model.channels` to "
      "`model.quantize_edges` are the graph models' keys (pde_gcn, pde_gcn_nonsym, gcn).\n\n"
      "This file is generated: `build/pdeq schema > docs/configs.md` (a test checks that it is current).\n";
  std::string section;
  for (const auto& row : documenter.rows) {
    const std::string top = row.key.substr(0, row.key.find('.'));
    if (top != section) {
      section = top;
      out += "\n## `" + section + "`\n\n| key | default | allowed |\n|---|---|---|\n";
    }
    out += "| `" + row.key + "` | `" + row.default_value.dump() + "` | " + row.rule + " |\n";
  }
  return out;
}

bool operator==(const Config& a, const Config& b) { return to_json(a) == to_json(b); }

bool operator!=(const Config& a, const Config& b) { return !(a == b); }

}  // namespace pdeq::config
