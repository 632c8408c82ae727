// The .pdeqint reader (pdeq::deploy::parse_int_graph): whole files, header, graph description and tensors.
#include <pdeq/deploy/int_format.h>

#include <torch/types.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "fuzz_support.h"

namespace {

/// A small valid graph: float stem, quantize, one int8 convolution, a residual add to float, the head.
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
  IntOp quantize;
  quantize.kind = OpKind::kQuantize;
  quantize.name = "layer1.0.act_in";
  quantize.inputs = {1};
  quantize.output = 2;
  quantize.out_scale = 0.2;
  quantize.qmax = 15;
  IntOp conv;
  conv.kind = OpKind::kQConv;
  conv.name = "layer1.0.branch";
  conv.inputs = {2};
  conv.output = 3;
  conv.weight = torch::tensor({1, -2, 3, 0}, torch::kInt8).reshape({2, 2, 1, 1});
  conv.weight_scale = torch::full({2}, 0.1, torch::kDouble);
  conv.bias = torch::zeros({2});
  conv.out_scale = 0.05;
  conv.out_zero_point = 128;
  conv.weight_bits = 4;
  IntOp add;
  add.kind = OpKind::kAddToFloat;
  add.name = "layer1.0";
  add.inputs = {2, 3};
  add.output = 4;
  add.relu = true;
  IntOp head;
  head.kind = OpKind::kFloatHead;
  head.name = "fc";
  head.inputs = {4};
  head.output = 5;
  head.weight = torch::ones({3, 2});
  head.bias = torch::zeros({3});
  graph.ops = {stem, quantize, conv, add, head};
  graph.meta = {{"model", "seed"}, {"input_shape", {1, 4, 4}}};
  return graph;
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

// Input: a whole .pdeqint file. The checksum would reject almost every mutation at once, so inputs whose
// first byte is odd get their checksum recomputed first: the fuzzer then reaches the graph description and
// tensors.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (size > 32 && (data[size - 1] & 1)) {
    uint64_t hash = 14695981039346656037ull;
    for (size_t i = 0; i + 8 < bytes.size(); ++i) {
      hash ^= static_cast<unsigned char>(bytes[i]);
      hash *= 1099511628211ull;
    }
    for (size_t i = 0; i < 8; ++i) bytes[bytes.size() - 8 + i] = static_cast<char>((hash >> (8 * i)) & 0xff);
  }
  pdeq::fuzz::expect_clean_rejection([&] { pdeq::deploy::parse_int_graph(bytes, "fuzz.pdeqint"); });
  return 0;
}
