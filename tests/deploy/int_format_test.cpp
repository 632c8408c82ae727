#include <pdeq/deploy/export.h>
#include <pdeq/deploy/int_format.h>
#include <pdeq/deploy/int_model.h>

#include "deploy_support.h"
#include "test_support.h"

#include <fstream>
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

/// The file's checksum recomputed after an edit (FNV-1a 64 over everything before the last 8 bytes).
void fix_checksum(std::string& bytes) {
  uint64_t hash = 14695981039346656037ull;
  for (size_t i = 0; i + 8 < bytes.size(); ++i) {
    hash ^= static_cast<unsigned char>(bytes[i]);
    hash *= 1099511628211ull;
  }
  for (size_t i = 0; i < 8; ++i) bytes[bytes.size() - 8 + i] = static_cast<char>((hash >> (8 * i)) & 0xff);
}

deploy::IntGraph small_graph() {
  auto net = test::small_resnet(/*symmetric=*/true);
  net->eval();
  return deploy::export_classifier(*net, {test::quadrant_batch(16).first});
}

TEST_F(IntFormatTest, SaveLoadRoundTripKeepsEveryOpAndTheOutput) {
  test::TempDir dir("int_format");
  auto graph = small_graph();
  graph.meta = {{"model", "small"}, {"input_shape", {3, 16, 16}}};
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
    fix_checksum(edited);
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

}  // namespace
