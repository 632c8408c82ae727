#include <pdeq/deploy/export.h>
#include <pdeq/deploy/int_format.h>
#include <pdeq/deploy/int_model.h>

#include "deploy_support.h"
#include "test_support.h"

#include <pdeq/config/config.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

namespace {

using namespace pdeq;

struct IntFormatTest : test::SeedingFixture {};

std::string read_bytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream content;
  content << file.rdbuf();
  return content.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

/// A file split into its graph description and tensor data, to be edited and framed again with the right
/// lengths and checksum: what the checks behind the framing see.
struct Framed {
  nlohmann::json description;
  std::string data;

  explicit Framed(const std::string& bytes) {
    uint32_t graph_bytes = 0;
    uint64_t data_bytes = 0;
    std::memcpy(&graph_bytes, bytes.data() + 12, 4);  // x86: little-endian
    std::memcpy(&data_bytes, bytes.data() + 16, 8);
    description = nlohmann::json::parse(bytes.substr(24, graph_bytes));
    data = bytes.substr(24 + graph_bytes, data_bytes);
  }
  std::string bytes() const { return deploy::frame_int_file(description.dump(), data); }
  nlohmann::json& op(size_t i) { return description["ops"][i]; }
  /// The index of the first op of `kind`.
  size_t find(const std::string& kind) const {
    const auto& ops = description["ops"];
    for (size_t i = 0; i < ops.size(); ++i) {
      if (ops[i]["kind"] == kind) return i;
    }
    ADD_FAILURE() << "no " << kind << " op";
    return 0;
  }
  /// Overwrites element `index` of the op's tensor `field` with `value` (of the tensor's element type).
  template <typename T>
  void set(size_t i, const char* field, size_t index, T value) {
    const auto offset = op(i)[field]["offset"].get<size_t>() + index * sizeof(T);
    std::memcpy(data.data() + offset, &value, sizeof(T));
  }
};

/// What loading `file` throws: a std::runtime_error naming "edited" and `expected`, never a ConfigError (a
/// damaged file exits 1, not 2 as a config the user wrote).
void expect_refused(const Framed& file, const std::string& expected) {
  try {
    deploy::parse_int_graph(file.bytes(), "edited");
    ADD_FAILURE() << "loaded; expected an error containing \"" << expected << "\"";
  } catch (const config::ConfigError& e) {
    ADD_FAILURE() << "a ConfigError (exit 2): " << e.what();
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("edited: ", 0), 0u) << message;
    EXPECT_NE(message.find(expected), std::string::npos) << message;
  }
}

/// "op <i> (<kind> '<name>'): " of the op as the messages name it.
std::string op_prefix(Framed& file, size_t i) {
  return "edited: op " + std::to_string(i) + " (" + file.op(i)["kind"].get<std::string>() + " '" +
         file.op(i)["name"].get<std::string>() + "'): ";
}

deploy::IntGraph small_graph() {
  auto net = test::small_resnet(/*symmetric=*/true);
  net->eval();
  auto graph = deploy::export_classifier(*net, {test::quadrant_batch(16).first});
  graph.meta = test::small_resnet_meta();
  return graph;
}

TEST_F(IntFormatTest, SaveLoadRoundTripKeepsEveryOpAndTheOutput) {
  test::TempDir dir("int_format");
  auto graph = small_graph();
  graph.meta["model"] = "small";
  deploy::save_int_graph(graph, dir.file("m.pdeqint"));
  const auto loaded = deploy::load_int_graph(dir.file("m.pdeqint"));
  ASSERT_EQ(loaded.ops.size(), graph.ops.size());
  EXPECT_EQ(loaded.meta, graph.meta);
  for (size_t i = 0; i < graph.ops.size(); ++i) {
    const auto &a = graph.ops[i], &b = loaded.ops[i];
    EXPECT_EQ(a.kind, b.kind);
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.inputs, b.inputs);
    EXPECT_EQ(a.out_scale, b.out_scale);
    EXPECT_EQ(a.out_zero_point, b.out_zero_point);
    EXPECT_EQ(a.qmax, b.qmax);
    for (const auto& [x, y] :
         {std::pair{a.weight, b.weight}, {a.weight_scale, b.weight_scale}, {a.bias, b.bias}}) {
      ASSERT_EQ(x.defined(), y.defined());
      if (x.defined()) {
        EXPECT_TRUE(torch::equal(x, y)) << a.name;
      }
    }
  }
  const auto images = test::quadrant_batch(8).first;
  EXPECT_TRUE(torch::equal(deploy::IntegerModel(graph).forward(images),
                           deploy::IntegerModel(loaded).forward(images)));
}

TEST_F(IntFormatTest, CorruptFilesAreClearErrors) {
  test::TempDir dir("int_format_corrupt");
  const std::string path = dir.file("m.pdeqint");
  deploy::save_int_graph(small_graph(), path);
  const std::string good = read_bytes(path);
  const std::string bad = dir.file("bad.pdeqint");

  write_bytes(bad, good.substr(0, good.size() - 100));
  PDEQ_ASSERT_THROWS_WITH(deploy::load_int_graph(bad), bad + ": truncated or padded");
  write_bytes(bad, good.substr(0, 12));
  PDEQ_ASSERT_THROWS_WITH(deploy::load_int_graph(bad), "truncated: 12 bytes");
  write_bytes(bad, "");
  PDEQ_ASSERT_THROWS_WITH(deploy::load_int_graph(bad), "not a pdeq integer model");

  std::string edited = good;
  edited[0] = 'X';
  write_bytes(bad, edited);
  PDEQ_ASSERT_THROWS_WITH(deploy::load_int_graph(bad),
                          bad + ": not a pdeq integer model (expected the magic");

  edited = good;
  edited[8] = 2;
  write_bytes(bad, edited);
  PDEQ_ASSERT_THROWS_WITH(deploy::load_int_graph(bad),
                          "format version 2, but this build reads version 1 at byte 8");

  edited = good;
  edited[good.size() - 20] ^= 0x40;  // a weight byte
  write_bytes(bad, edited);
  PDEQ_ASSERT_THROWS_WITH(deploy::load_int_graph(bad), "checksum mismatch (the file is corrupt)");

  PDEQ_ASSERT_THROWS_WITH(deploy::load_int_graph(dir.file("missing.pdeqint")), "cannot open integer model");
}

TEST_F(IntFormatTest, InconsistentGraphsWithAValidChecksumAreRefusedNamingTheOp) {
  test::TempDir dir("int_format_graph");
  const std::string path = dir.file("m.pdeqint");
  deploy::save_int_graph(small_graph(), path);
  const std::string good = read_bytes(path);
  const auto replace = [&](const std::string& from, const std::string& to) {
    std::string edited = good;
    const auto at = edited.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    edited.replace(at, from.size(), to);  // same length: the header's lengths stay right
    deploy::reseal_int_file(edited);
    return deploy::parse_int_graph(edited, "edited");
  };
  PDEQ_ASSERT_THROWS_WITH(replace("\"kind\":\"qconv\"", "\"kind\":\"qconw\""),
                          "edited: op 2: unknown operation kind 'qconw'");
  PDEQ_ASSERT_THROWS_WITH(replace("\"qmax\":15", "\"qmax\":-5"), "qmax must be in [1, 255], got -5");
  PDEQ_ASSERT_THROWS_WITH(replace("\"dtype\":\"int8\"", "\"dtype\":\"int9\""), "unknown dtype 'int9'");
  PDEQ_ASSERT_THROWS_WITH(replace("\"inputs\":[2]", "\"inputs\":[9]"),
                          "input 9 is not defined before this operation");
  PDEQ_ASSERT_THROWS_WITH(replace("\"ops\":[", "\"opz\":["), "graph description has no \"ops\" array");
}

TEST_F(IntFormatTest, WeightCodesOutsideTheOpsBitWidthAreRefused) {
  test::TempDir dir("int_format_codes");
  deploy::save_int_graph(small_graph(), dir.file("m.pdeqint"));
  const Framed good(read_bytes(dir.file("m.pdeqint")));
  Framed probe = good;
  const size_t conv = probe.find("qconv");
  ASSERT_EQ(probe.op(conv)["weight_bits"], 4);
  for (const int8_t code : {int8_t{8}, int8_t{100}, int8_t{127}, int8_t{-8}, int8_t{-128}}) {
    SCOPED_TRACE(static_cast<int>(code));
    Framed file = good;
    file.set(conv, "weight", 5, code);
    expect_refused(file, op_prefix(file, conv) + "weight codes must be in [-7, 7] for weight_bits 4, got [");
  }
  Framed edge = good;  // the limits themselves load
  edge.set(conv, "weight", 0, int8_t{7});
  edge.set(conv, "weight", 1, int8_t{-7});
  EXPECT_NO_THROW(deploy::parse_int_graph(edge.bytes(), "edited"));

  Framed eight = good;  // 127 is an 8-bit code; -128 is no symmetric code at all
  eight.op(conv)["weight_bits"] = 8;
  eight.set(conv, "weight", 5, int8_t{127});
  EXPECT_NO_THROW(deploy::parse_int_graph(eight.bytes(), "edited"));
  eight.set(conv, "weight", 5, int8_t{-128});
  expect_refused(eight, op_prefix(eight, conv) + "weight codes must be in [-127, 127] for weight_bits 8");
}

TEST_F(IntFormatTest, NonFiniteFloatParametersAreRefused) {
  test::TempDir dir("int_format_nan");
  deploy::save_int_graph(small_graph(), dir.file("m.pdeqint"));
  const Framed good(read_bytes(dir.file("m.pdeqint")));
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  struct Case {
    std::string kind, field;
    float value;
  };
  for (const auto& c : {Case{"qconv", "bias", nan}, Case{"qconv", "bias", -inf},
                        Case{"float_stem", "weight", nan}, Case{"float_stem", "bias", inf},
                        Case{"float_head", "weight", nan}, Case{"float_head", "bias", nan}}) {
    SCOPED_TRACE(c.kind + "." + c.field + " = " + std::to_string(c.value));
    Framed file = good;
    const size_t i = file.find(c.kind);
    file.set(i, c.field.c_str(), 1, c.value);
    expect_refused(file, op_prefix(file, i) + c.field + " must be finite");
  }
  Framed scale = good;  // weight_scale (float64) was checked before; stays so
  const size_t conv = scale.find("qconv");
  scale.set(conv, "weight_scale", 0, std::numeric_limits<double>::quiet_NaN());
  expect_refused(scale, op_prefix(scale, conv) + "weight_scale must be positive and finite");
}

TEST_F(IntFormatTest, MissingOrMalformedMetaIsRefusedNamingTheKey) {
  test::TempDir dir("int_format_meta");
  deploy::save_int_graph(small_graph(), dir.file("m.pdeqint"));
  const Framed good(read_bytes(dir.file("m.pdeqint")));
  EXPECT_NO_THROW(deploy::parse_int_graph(good.bytes(), "edited"));  // the framing of these tests is right

  Framed file = good;
  file.description.erase("meta");
  expect_refused(file, "edited: meta: missing");
  file.description["meta"] = {1, 2};
  expect_refused(file, "edited: meta: expected an object, got [1,2]");

  const auto with = [&](const char* key, const nlohmann::json& value) {
    Framed edited = good;
    if (value.is_discarded()) {
      edited.description["meta"].erase(key);
    } else {
      edited.description["meta"][key] = value;
    }
    return edited;
  };
  const auto removed = nlohmann::json(nlohmann::json::value_t::discarded);
  expect_refused(with("config", removed), "edited: meta.config: missing");
  expect_refused(with("config", "cifar10"), "edited: meta.config: expected an object, got \"cifar10\"");
  expect_refused(with("config", {{"train", {{"epochs", -3}}}}),
                 "edited: meta.config: train.epochs: expected an integer >= 1, got -3");
  expect_refused(with("input_shape", removed), "edited: meta.input_shape: missing");
  for (const auto& shape : {nlohmann::json{3, 16}, nlohmann::json{3, 0, 16}, nlohmann::json{3, -16, 16},
                            nlohmann::json{3, 16, 1e9}, nlohmann::json{3, 16, "16"}, nlohmann::json(3)}) {
    expect_refused(with("input_shape", shape), "edited: meta.input_shape: expected [C, H, W], integers in");
  }
  expect_refused(with("num_classes", removed), "edited: meta.num_classes: missing");
  expect_refused(with("num_classes", 0), "edited: meta.num_classes: expected an integer >= 1, got 0");
  expect_refused(with("num_classes", "4"), "edited: meta.num_classes: expected an integer >= 1, got \"4\"");
}

// Found by the structure-aware fuzzer: a float where an integer belongs ("bytes": -1e308) was cast by
// nlohmann's get<uint64_t>(), undefined behaviour (UBSan); 1.5 was read as 1.
TEST_F(IntFormatTest, IntegerFieldsMustBeIntegersOfTheirRange) {
  test::TempDir dir("int_format_integers");
  deploy::save_int_graph(small_graph(), dir.file("m.pdeqint"));
  const Framed good(read_bytes(dir.file("m.pdeqint")));
  const size_t conv = Framed(good).find("qconv");
  struct Case {
    nlohmann::json::json_pointer field;
    nlohmann::json value;
    std::string message;
  };
  const auto op = nlohmann::json::json_pointer("/ops/" + std::to_string(conv));
  for (const auto& c :
       {Case{op / "weight" / "bytes", -1e308,
             "field 'weight': field 'bytes' must be a non-negative integer, got -1e+308"},
        Case{op / "weight" / "offset", -1, "field 'offset' must be a non-negative integer, got -1"},
        Case{op / "weight" / "shape", {8, 8.5, 3, 3}, "field 'shape' must be an integer, got 8.5"},
        Case{op / "stride", 1.5, "field 'stride' must be an integer, got 1.5"},
        Case{op / "qmax", 1e300, "field 'qmax' must be an integer, got 1e+300"},
        Case{op / "output", uint64_t{1} << 63, "field 'output' must be an integer, got 9223372036854775808"},
        Case{op / "inputs", {2.0}, "field 'inputs' must be an integer, got 2.0"}}) {
    SCOPED_TRACE(c.field.to_string());
    Framed file = good;
    file.description[c.field] = c.value;
    expect_refused(file, "edited: op " + std::to_string(conv));
    expect_refused(file, c.message);
  }
}

TEST_F(IntFormatTest, MetaInconsistentWithTheGraphIsRefusedNamingTheOp) {
  test::TempDir dir("int_format_shapes");
  deploy::save_int_graph(small_graph(), dir.file("m.pdeqint"));
  const Framed good(read_bytes(dir.file("m.pdeqint")));

  Framed channels = good;  // the stem takes 3 channels
  channels.description["meta"]["input_shape"] = {1, 16, 16};
  const size_t stem = channels.find("float_stem");
  expect_refused(channels, op_prefix(channels, stem) +
                               "weight has 3 input channels, but its input value 0 (meta.input_shape) has 1");

  Framed classes = good;  // the head has 4 outputs
  classes.description["meta"]["num_classes"] = 10;
  const size_t head = classes.description["ops"].size() - 1;
  expect_refused(classes, op_prefix(classes, head) + "weight has 4 classes, but meta.num_classes is 10");

  Framed tiny = good;  // 1x1 images: the 3x3 convolutions fit only with their padding
  tiny.description["meta"]["input_shape"] = {3, 1, 1};
  EXPECT_NO_THROW(deploy::parse_int_graph(tiny.bytes(), "edited"));
  const size_t conv = tiny.find("qconv");
  ASSERT_EQ(tiny.op(conv)["padding"], 1);
  tiny.op(conv)["padding"] = 0;
  expect_refused(tiny,
                 op_prefix(tiny, conv) + "a 3x3 kernel with padding 0 does not fit its [8, 1, 1] input");

  // The last residual add of the second stage ([16, 8, 8]) fed the first stage's input codes ([8, 16, 16]).
  Framed add = good;
  size_t last_add = 0;
  for (size_t i = 0; i < add.description["ops"].size(); ++i) {
    if (add.op(i)["kind"] == "add" || add.op(i)["kind"] == "add_to_float") last_add = i;
  }
  const auto first_stage_codes = add.op(conv)["inputs"][0];
  add.op(last_add)["inputs"][0] = first_stage_codes;
  expect_refused(add, op_prefix(add, last_add) + "its inputs differ in shape: value " +
                          first_stage_codes.dump() + " is [8, 16, 16], value ");
  // Channels are checked without meta too (IntegerModel, export): the same add in memory.
  auto graph = deploy::parse_int_graph(good.bytes(), "good");
  graph.ops[last_add].inputs[0] = first_stage_codes.get<int64_t>();
  PDEQ_ASSERT_THROWS_WITH(graph.validate("memory"), "memory: op " + std::to_string(last_add));
  PDEQ_ASSERT_THROWS_WITH(graph.validate("memory"), "its inputs differ in shape");
}

TEST_F(IntFormatTest, StableNetTransitionsRoundTripAndTheirShapesAreChecked) {
  test::TempDir dir("int_format_stablenet");
  auto net = test::small_stablenet(/*symmetric=*/true);
  net->eval();
  auto graph = deploy::export_classifier(*net, {test::quadrant_batch(16).first});
  graph.meta = test::small_resnet_meta();
  deploy::save_int_graph(graph, dir.file("s.pdeqint"));
  const auto loaded = deploy::load_int_graph(dir.file("s.pdeqint"));
  const auto images = test::quadrant_batch(8).first;
  EXPECT_TRUE(torch::equal(deploy::IntegerModel(graph).forward(images),
                           deploy::IntegerModel(loaded).forward(images)));
  const Framed good(read_bytes(dir.file("s.pdeqint")));

  // The concatenation reading the pooled values it feeds.
  Framed concat = good;
  const size_t c = concat.find("concat"), pool = concat.find("avg_pool");
  ASSERT_EQ(pool, c + 1);
  concat.op(c)["inputs"][1] = pool + 1;
  expect_refused(concat, op_prefix(concat, c) + "input " + std::to_string(pool + 1) +
                             " is not defined before this operation");
  // Any two values of one height and width concatenate (here the block's input codes twice: 8 + 8 channels,
  // what the head takes); a third input is refused.
  Framed twice = good;
  twice.op(c)["inputs"][0] = twice.op(c)["inputs"][1];
  EXPECT_NO_THROW(deploy::parse_int_graph(twice.bytes(), "edited"));
  twice.op(c)["inputs"].push_back(1);
  expect_refused(twice, op_prefix(twice, c) + "expected 2 inputs, got 3");

  // The pooling window against the size of what it pools.
  Framed window = good;
  window.op(pool)["stride"] = 16;
  EXPECT_NO_THROW(deploy::parse_int_graph(window.bytes(), "edited"));  // 16x16 -> 1x1 fits
  window.description["meta"]["input_shape"] = {3, 8, 8};
  expect_refused(window,
                 op_prefix(window, pool) + "a 16x16 pooling window does not fit its [16, 8, 8] input");
}

/// TV smoothing ops: their steps and options round-trip, and a damaged one is refused naming the op and
/// field.
TEST_F(IntFormatTest, TvSmoothingOpsRoundTripAndTheirFieldsAreChecked) {
  test::TempDir dir("int_format_tv");
  models::TVOptions tv;
  tv.smooth.iters(3).eps(0.05).weight(nn::TVWeight::kPeronaMalik);
  auto net = test::small_resnet(/*symmetric=*/false, 4, tv);
  net->eval();
  auto graph = deploy::export_classifier(*net, {test::quadrant_batch(16).first});
  graph.meta = test::small_resnet_meta();
  deploy::save_int_graph(graph, dir.file("tv.pdeqint"));
  const auto loaded = deploy::load_int_graph(dir.file("tv.pdeqint"));
  ASSERT_EQ(loaded.ops.size(), graph.ops.size());
  for (size_t i = 0; i < graph.ops.size(); ++i) {
    if (graph.ops[i].kind != deploy::OpKind::kTvSmooth) continue;
    EXPECT_TRUE(torch::equal(loaded.ops[i].tau, graph.ops[i].tau)) << i;
    EXPECT_EQ(loaded.ops[i].tv_iters, 3);
    EXPECT_DOUBLE_EQ(loaded.ops[i].tv_eps, 0.05);
    EXPECT_EQ(loaded.ops[i].tv_weight, "perona_malik");
  }
  const Framed good(read_bytes(dir.file("tv.pdeqint")));
  Framed edited = good;
  const size_t t = edited.find("tv_smooth");
  edited.set<float>(t, "tau", 1, -0.5f);
  expect_refused(edited, op_prefix(edited, t) + "tau must be >= 0");
  edited = good;
  edited.set<float>(t, "tau", 0, std::numeric_limits<float>::quiet_NaN());
  expect_refused(edited, op_prefix(edited, t) + "tau must be finite");
  edited = good;
  edited.op(t)["tv_weight"] = "gaussian";
  expect_refused(edited,
                 op_prefix(edited, t) + "tv_weight must be charbonnier or perona_malik, got 'gaussian'");
  edited = good;
  edited.op(t)["tv_iters"] = 0;
  expect_refused(edited, op_prefix(edited, t) + "tv_iters must be in [1, 100], got 0");
  edited = good;
  edited.op(t).erase("tau");
  expect_refused(edited, op_prefix(edited, t) + "tau is missing");
  edited = good;
  edited.op(t)["tau"]["shape"] = {2};
  edited.op(t)["tau"]["bytes"] = 8;
  expect_refused(edited, op_prefix(edited, t) + "tau has 2 channels, but its input value 1 has 8");
  // The convolution before an inner TV layer writes float: it cannot feed a convolution directly.
  edited = good;
  const size_t f = edited.find("qconv_to_float");
  edited.op(f + 1)["kind"] = "qconv";
  expect_refused(edited, "has the wrong kind (float vs codes)");
}

}  // namespace
