// The .pdeqint reader (pdeq::deploy::parse_int_graph): whole files, header, graph description and tensors.
// A structure-aware mutator (LLVMFuzzerCustomMutator) edits the graph description as JSON and the tensor data
// as typed values, then frames the file again with the right lengths and checksum, so that the checks behind
// the framing (ops, meta, shapes, code ranges) see most inputs.
#include <pdeq/config/config.h>
#include <pdeq/deploy/int_format.h>

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <vector>

#include "fuzz_support.h"

namespace {

/// A small valid graph: float stem, TV smoothing, quantize, a convolution to float and its quantizer, a
/// depthwise and a dense int8 convolution, a residual add to float, a concatenation and an average pooling, a
/// float convolution, the head.
pdeq::deploy::IntGraph seed_graph() {
  using pdeq::deploy::IntOp;
  using pdeq::deploy::OpKind;
  pdeq::deploy::IntGraph graph;
  IntOp stem;
  stem.kind = OpKind::kFloatStem;
  stem.name = "stem";
  stem.inputs = {0};
  stem.output = 1;
  stem.weight = torch::ones({2, 1, 1, 1});
  stem.bias = torch::zeros({2});
  stem.relu = true;
  IntOp tv;
  tv.kind = OpKind::kTvSmooth;
  tv.name = "layer1.0.tv_in";
  tv.inputs = {1};
  tv.output = 2;
  tv.tau = torch::tensor({0.02f, 0.05f});
  tv.tv_iters = 2;
  tv.tv_eps = 0.01;
  tv.tv_weight = "perona_malik";
  IntOp quantize;
  quantize.kind = OpKind::kQuantize;
  quantize.name = "layer1.0.act_in";
  quantize.inputs = {2};
  quantize.output = 3;
  quantize.out_scale = 0.2;
  quantize.qmax = 15;
  IntOp to_float;  // before a TV layer: the convolution's sums kept in float
  to_float.kind = OpKind::kQConvToFloat;
  to_float.name = "layer1.0.act_mid.conv";
  to_float.inputs = {3};
  to_float.output = 4;
  to_float.weight = torch::tensor({2, 1, -1, 3}, torch::kInt8).reshape({2, 2, 1, 1});
  to_float.weight_scale = torch::full({2}, 0.2, torch::kDouble);
  to_float.bias = torch::zeros({2});
  to_float.relu = true;
  to_float.weight_bits = 4;
  IntOp mid = quantize;
  mid.name = "layer1.0.act_mid";
  mid.inputs = {4};
  mid.output = 5;
  IntOp depthwise;  // MobileNetV2: one group per channel
  depthwise.kind = OpKind::kQConv;
  depthwise.name = "layer1.0.act_out";
  depthwise.inputs = {5};
  depthwise.output = 6;
  depthwise.weight = torch::tensor({1, 0, -1, 2, 3, 2, 0, 1, -3, 1, 1, 1, 0, 0, 0, 2, -2, 1}, torch::kInt8)
                         .reshape({2, 1, 3, 3});
  depthwise.weight_scale = torch::full({2}, 0.3, torch::kDouble);
  depthwise.bias = torch::zeros({2});
  depthwise.padding = 1;
  depthwise.groups = 2;
  depthwise.relu = true;
  depthwise.out_scale = 0.2;
  depthwise.qmax = 15;
  depthwise.weight_bits = 4;
  IntOp conv;
  conv.kind = OpKind::kQConv;
  conv.name = "layer1.0.branch";
  conv.inputs = {6};
  conv.output = 7;
  conv.weight = torch::tensor({1, -2, 3, 0}, torch::kInt8).reshape({2, 2, 1, 1});
  conv.weight_scale = torch::full({2}, 0.1, torch::kDouble);
  conv.bias = torch::zeros({2});
  conv.out_scale = 0.05;
  conv.out_zero_point = 128;
  conv.weight_bits = 4;
  IntOp add;
  add.kind = OpKind::kAddToFloat;
  add.name = "layer1.0";
  add.inputs = {3, 7};
  add.output = 8;
  add.relu = true;
  IntOp concat;  // a StableNet transition: the sum widened by the block's input codes, then pooled
  concat.kind = OpKind::kConcat;
  concat.name = "layer1.0.concat";
  concat.inputs = {8, 3};
  concat.output = 9;
  IntOp pool;
  pool.kind = OpKind::kAvgPool;
  pool.name = "layer1.0.pool";
  pool.inputs = {9};
  pool.output = 10;
  pool.stride = 2;
  IntOp float_conv;  // MobileNetV2's head convolution
  float_conv.kind = OpKind::kFloatConv;
  float_conv.name = "head";
  float_conv.inputs = {10};
  float_conv.output = 11;
  float_conv.weight = torch::full({4, 4, 1, 1}, 0.5f);
  float_conv.bias = torch::zeros({4});
  float_conv.relu = true;
  IntOp head;
  head.kind = OpKind::kFloatHead;
  head.name = "fc";
  head.inputs = {11};
  head.output = 12;
  head.weight = torch::ones({3, 4});
  head.bias = torch::zeros({3});
  graph.ops = {stem, tv, quantize, to_float, mid, depthwise, conv, add, concat, pool, float_conv, head};
  graph.meta = {{"model", "seed"},
                {"config", pdeq::config::to_json(pdeq::config::Config{})},
                {"input_shape", {1, 4, 4}},
                {"num_classes", 3}};
  return graph;
}

template <typename T>
T get(const uint8_t* in) {
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) value |= static_cast<T>(in[i]) << (8 * i);
  return value;
}

/// A well-framed input: magic, version 1, lengths that add up to its size. The checksum may be anything.
bool split(const uint8_t* data, size_t size, std::string& description, std::string& tensors) {
  if (size < 32 || std::memcmp(data, pdeq::deploy::kIntFileMagic, 8) != 0 || get<uint32_t>(data + 8) != 1)
    return false;
  const uint64_t graph_bytes = get<uint32_t>(data + 12), data_bytes = get<uint64_t>(data + 16);
  if (graph_bytes > size || data_bytes > size || 24 + graph_bytes + data_bytes + 8 != size) return false;
  description.assign(reinterpret_cast<const char*>(data) + 24, graph_bytes);
  tensors.assign(reinterpret_cast<const char*>(data) + 24 + graph_bytes, data_bytes);
  return true;
}

using nlohmann::json;

/// Every node of `value` (containers included), as pointers from the root.
void collect(const json& value, const json::json_pointer& at, std::vector<json::json_pointer>& out) {
  out.push_back(at);
  if (value.is_object()) {
    for (const auto& [key, child] : value.items()) collect(child, at / key, out);
  } else if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) collect(value[i], at / i, out);
  }
}

/// Values that sit on or just past the limits of some field (codes, bits, qmax, shapes, offsets, types).
json interesting_value(std::minstd_rand& rng) {
  static const json values[] = {0,
                                -1,
                                1,
                                2,
                                3,
                                7,
                                8,
                                15,
                                16,
                                127,
                                -128,
                                128,
                                255,
                                256,
                                65536,
                                65537,
                                uint64_t{1} << 31,
                                uint64_t{1} << 32,
                                std::numeric_limits<int64_t>::max(),
                                std::numeric_limits<int64_t>::min(),
                                std::numeric_limits<uint64_t>::max(),
                                0.5,
                                -0.0,
                                1e-320,
                                1e308,
                                -1e308,
                                nullptr,
                                true,
                                false,
                                "",
                                "qconv",
                                "add",
                                "float_stem",
                                "float_head",
                                "concat",
                                "avg_pool",
                                "int8",
                                "float32",
                                "float64",
                                json::array(),
                                json::object(),
                                {1, 1, 1},
                                {3, 16, 16},
                                {2, 2, 1, 1}};
  return values[rng() % (sizeof(values) / sizeof(values[0]))];
}

/// One edit of the parsed description: a node (an op field, a tensor reference, meta, a config key, a whole
/// op) set to an interesting value or to a copy of another node, or removed.
bool mutate_json(json& description, std::minstd_rand& rng) {
  std::vector<json::json_pointer> nodes;
  collect(description, json::json_pointer(), nodes);
  if (nodes.size() < 2) return false;
  const auto& target = nodes[1 + rng() % (nodes.size() - 1)];  // not the root
  switch (rng() % 4) {
    case 0: {
      const json::json_pointer parent = target.parent_pointer();
      json& container = description[parent];
      if (container.is_object()) {
        container.erase(target.back());
      } else if (container.is_array()) {
        container.erase(static_cast<size_t>(std::stoul(target.back())));
      }
      return true;
    }
    case 1: {
      const json copy = description[nodes[rng() % nodes.size()]];
      description[target] = copy;
      return true;
    }
    default:
      description[target] = interesting_value(rng);
      return true;
  }
}

/// One typed edit of the tensor data: an element of a tensor the description references set to an extreme
/// code (int8) or a non-finite or extreme float.
bool mutate_tensor(const json& description, std::string& tensors, std::minstd_rand& rng) {
  struct Ref {
    std::string dtype;
    uint64_t offset, bytes;
  };
  std::vector<Ref> refs;
  std::vector<json::json_pointer> nodes;
  collect(description, json::json_pointer(), nodes);
  for (const auto& at : nodes) {
    const json& node = description[at];
    if (!node.is_object() || !node.contains("dtype") || !node["dtype"].is_string() ||
        !node.contains("offset") || !node["offset"].is_number_unsigned() || !node.contains("bytes") ||
        !node["bytes"].is_number_unsigned())
      continue;
    const Ref ref{node["dtype"].get<std::string>(), node["offset"].get<uint64_t>(),
                  node["bytes"].get<uint64_t>()};
    if (ref.offset <= tensors.size() && ref.bytes <= tensors.size() - ref.offset) refs.push_back(ref);
  }
  if (refs.empty()) return false;
  const Ref& ref = refs[rng() % refs.size()];
  const auto write = [&](const auto value) {
    const uint64_t count = ref.bytes / sizeof(value);
    if (count == 0) return false;
    std::memcpy(tensors.data() + ref.offset + (rng() % count) * sizeof(value), &value, sizeof(value));
    return true;
  };
  if (ref.dtype == "int8") {
    static const int8_t codes[] = {127, -128, -127, 8, -8, 7, -7, 100, 0, 1, -1};
    return write(codes[rng() % (sizeof(codes) / sizeof(codes[0]))]);
  }
  constexpr double kNan = std::numeric_limits<double>::quiet_NaN(),
                   kInf = std::numeric_limits<double>::infinity();
  static const double floats[] = {kNan, kInf, -kInf, 0.0, -0.0, 1e-45, 1e-310, 3.4e38, 1e300, -1.0};
  const double value = floats[rng() % (sizeof(floats) / sizeof(floats[0]))];
  if (ref.dtype == "float64") return write(value);
  return write(static_cast<float>(value));
}

}  // namespace

// PDEQ_FUZZ_SEED_DIR=<dir>: write the seed input there and exit (scripts/fuzz.sh does this once).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* seeds = std::getenv("PDEQ_FUZZ_SEED_DIR")) {
    const auto path = pdeq::fuzz::scratch("int_format_seed") / "seed.pdeqint";
    pdeq::deploy::save_int_graph(seed_graph(), path);
    std::ifstream in(path, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    pdeq::fuzz::write_file(std::filesystem::path(seeds) / "valid_model", bytes.str());
    std::exit(0);
  }
  return 0;
}

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

// Well-framed inputs: one in eight mutated as raw bytes (header, lengths, checksum); the others split into
// the graph description and the tensor data, one of them edited (the description as text by libFuzzer, or as
// JSON; the tensors as bytes by libFuzzer, or as typed values), and framed again with the right lengths and
// checksum. Other inputs: libFuzzer's own byte mutations.
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  std::minstd_rand rng(seed);
  std::string description, tensors;
  if (rng() % 8 == 0 || !split(data, size, description, tensors))
    return LLVMFuzzerMutate(data, size, max_size);
  // libFuzzer's mutations on one part, in a buffer with room to grow.
  const auto mutate_bytes = [&](std::string& part) {
    const size_t room = max_size > size ? max_size - size : 0;
    part.resize(part.size() + room);
    const size_t old_size = part.size() - room;
    part.resize(LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(part.data()), old_size, part.size()));
  };
  try {
    switch (rng() % 4) {
      case 0:
        mutate_bytes(description);
        break;
      case 1: {
        json parsed = json::parse(description);
        if (!mutate_json(parsed, rng)) return LLVMFuzzerMutate(data, size, max_size);
        description = parsed.dump(-1, ' ', false, json::error_handler_t::replace);
        break;
      }
      case 2:
        if (tensors.empty()) return LLVMFuzzerMutate(data, size, max_size);
        mutate_bytes(tensors);
        break;
      default:
        if (!mutate_tensor(json::parse(description), tensors, rng))
          return LLVMFuzzerMutate(data, size, max_size);
        break;
    }
  } catch (const std::exception&) {  // a description that is no JSON (any more): bytes only
    return LLVMFuzzerMutate(data, size, max_size);
  }
  const std::string file = pdeq::deploy::frame_int_file(description, tensors);
  if (file.size() > max_size) return LLVMFuzzerMutate(data, size, max_size);
  std::memcpy(data, file.data(), file.size());
  return file.size();
}

// Input: a whole .pdeqint file. The checksum would reject almost every byte-level mutation at once, so inputs
// whose last byte is odd get their checksum recomputed first (the mutator above frames most inputs right).
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (size > 32 && (data[size - 1] & 1)) pdeq::deploy::reseal_int_file(bytes);
  pdeq::fuzz::expect_clean_rejection([&] { pdeq::deploy::parse_int_graph(bytes, "fuzz.pdeqint"); });
  return 0;
}
