// Planetoid loader: counts on the real Cora/CiteSeer files, PubMed's missing features, malformed files.
#include "test_support.h"

#include <pdeq/data/planetoid.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace pdeq::test {
namespace {

namespace fs = std::filesystem;

std::string planetoid_root() { return shared_data("planetoid"); }

bool has_graph(const std::string& name) {
  return fs::exists(fs::path(planetoid_root()) / name / (name + ".feat.indptr.i64"));
}

#define PDEQ_REQUIRE_GRAPH(name)                                                                 \
  if (!has_graph(name)) {                                                                        \
    GTEST_SKIP() << "Planetoid " << name << " not found at " << planetoid_root() << "/" << name; \
  }

struct PlanetoidTest : SeedingFixture {
  TempDir dir{"planetoid"};

  /// A copy of the real Cora folder to damage.
  fs::path copy_cora() {
    const fs::path out = dir.path() / "cora";
    fs::create_directories(out);
    for (const auto& entry : fs::directory_iterator(fs::path(planetoid_root()) / "cora")) {
      if (entry.path().filename().string().rfind("cora.", 0) == 0) {
        fs::copy_file(entry.path(), out / entry.path().filename());
        fs::permissions(out / entry.path().filename(), fs::perms::owner_read | fs::perms::owner_write);
      }
    }
    return out;
  }

  template <typename T>
  static void write(const fs::path& file, const std::vector<T>& values) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(values.data()),
              static_cast<std::streamsize>(values.size() * sizeof(T)));
  }
  template <typename T>
  static std::vector<T> read(const fs::path& file) {
    std::ifstream in(file, std::ios::binary | std::ios::ate);
    std::vector<T> v(static_cast<size_t>(in.tellg()) / sizeof(T));
    in.seekg(0);
    in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
    return v;
  }
};

TEST_F(PlanetoidTest, CoraCountsAndSplit) {
  PDEQ_REQUIRE_GRAPH("cora");
  const auto g = data::load_planetoid(planetoid_root(), "cora");
  EXPECT_EQ(g.num_nodes, 2708);
  EXPECT_EQ(g.num_features, 1433);
  EXPECT_EQ(g.num_classes, 7);
  EXPECT_EQ(g.num_edges(), 5278);
  EXPECT_EQ(g.train.numel(), 140);
  EXPECT_EQ(g.val.numel(), 500);
  EXPECT_EQ(g.test.numel(), 1000);
  EXPECT_EQ(g.self_loops.numel(), 0);
  EXPECT_EQ(g.features.sizes(), (std::vector<int64_t>{2708, 1433}));
  EXPECT_EQ(g.features._nnz(), 49216);
  // 20 training nodes per class, all labelled.
  const auto counts = torch::bincount(g.labels.index_select(0, g.train), {}, 7);
  EXPECT_TRUE(torch::equal(counts, torch::full({7}, 20, torch::kInt64))) << counts;
  EXPECT_TRUE(g.labels.ge(0).all().item<bool>());
  // Row-normalised by default: every non-empty row sums to 1.
  const auto sums = g.dense_features().sum(1);
  EXPECT_TRUE(torch::allclose(sums, torch::ones({2708}), 1e-5, 1e-5));
}

TEST_F(PlanetoidTest, RawFeaturesWithoutNormalisationAreBinary) {
  PDEQ_REQUIRE_GRAPH("cora");
  const auto g =
      data::load_planetoid(planetoid_root(), "cora", data::PlanetoidOptions().normalize_features(false));
  EXPECT_TRUE(g.features.coalesce().values().eq(1).all().item<bool>());
}

TEST_F(PlanetoidTest, CiteSeerCountsAndUnlabelledNodes) {
  PDEQ_REQUIRE_GRAPH("citeseer");
  const auto g = data::load_planetoid(planetoid_root(), "citeseer");
  EXPECT_EQ(g.num_nodes, 3327);
  EXPECT_EQ(g.num_features, 3703);
  EXPECT_EQ(g.num_classes, 6);
  EXPECT_EQ(g.num_edges(), 4552);
  EXPECT_EQ(g.train.numel(), 120);
  EXPECT_EQ(g.val.numel(), 500);
  EXPECT_EQ(g.test.numel(), 1000);
  EXPECT_EQ(g.self_loops.numel(), 124);
  EXPECT_EQ(g.labels.eq(-1).sum().item<int64_t>(), 15);
  // Zero rows (the 15 isolated test-range nodes) stay zero after normalisation, the others sum to 1.
  const auto sums = g.dense_features().sum(1);
  EXPECT_TRUE((sums.sub(1).abs().lt(1e-5) | sums.eq(0)).all().item<bool>());
}

TEST_F(PlanetoidTest, PubMedWithoutFeaturesNamesTheMissingFile) {
  const fs::path pubmed = fs::path(planetoid_root()) / "pubmed";
  if (!fs::exists(pubmed / "pubmed.meta.txt")) GTEST_SKIP() << "PubMed not found at " << pubmed.string();
  if (has_graph("pubmed")) GTEST_SKIP() << "PubMed features are present at " << pubmed.string();
  PDEQ_ASSERT_THROWS_WITH(data::load_planetoid(planetoid_root(), "pubmed"),
                          "pubmed.feat.indptr.i64: feature file not found");
}

TEST_F(PlanetoidTest, UnknownNameAndMissingFolder) {
  PDEQ_ASSERT_THROWS_WITH(data::load_planetoid(planetoid_root(), "reddit"),
                          "must be one of cora, citeseer, pubmed, but got 'reddit'");
  PDEQ_ASSERT_THROWS_WITH(data::load_planetoid(dir.str(), "cora"), "cora.meta.txt: cannot open");
}

TEST_F(PlanetoidTest, TruncatedLabelsFileIsNamed) {
  PDEQ_REQUIRE_GRAPH("cora");
  const auto root = copy_cora();
  auto labels = read<int64_t>(root / "cora.labels.i64");
  labels.pop_back();
  write(root / "cora.labels.i64", labels);
  PDEQ_ASSERT_THROWS_WITH(data::load_planetoid(dir.str(), "cora"),
                          "cora.labels.i64: holds 2707 elements, expected 2708");
}

TEST_F(PlanetoidTest, OddSizedFileIsNamed) {
  PDEQ_REQUIRE_GRAPH("cora");
  const auto root = copy_cora();
  std::ofstream(root / "cora.val.i64", std::ios::app | std::ios::binary) << 'x';
  PDEQ_ASSERT_THROWS_WITH(data::load_planetoid(dir.str(), "cora"),
                          "cora.val.i64: size 4001 bytes is not a multiple of 8");
}

TEST_F(PlanetoidTest, OutOfRangeValuesAreNamed) {
  PDEQ_REQUIRE_GRAPH("cora");
  const auto root = copy_cora();
  {
    auto edges = read<int64_t>(root / "cora.edges.i64");
    const std::string u = std::to_string(edges[0]);
    edges[1] = 5000;
    write(root / "cora.edges.i64", edges);
    PDEQ_ASSERT_THROWS_WITH(data::load_planetoid(dir.str(), "cora"),
                            "cora.edges.i64: edge 0 is (" + u + ", 5000), expected 0 <= u < v < 2708");
    edges[1] = edges[0];  // a self-loop
    write(root / "cora.edges.i64", edges);
    PDEQ_ASSERT_THROWS_WITH(data::load_planetoid(dir.str(), "cora"),
                            "cora.edges.i64: edge 0 is (" + u + ", " + u + ")");
  }
  fs::copy_file(fs::path(planetoid_root()) / "cora" / "cora.edges.i64", root / "cora.edges.i64",
                fs::copy_options::overwrite_existing);
  {
    auto labels = read<int64_t>(root / "cora.labels.i64");
    labels[3] = 7;
    write(root / "cora.labels.i64", labels);
    PDEQ_ASSERT_THROWS_WITH(data::load_planetoid(dir.str(), "cora"),
                            "cora.labels.i64: node 3 has label 7 (expected -1 or a class in [0, 7))");
  }
  fs::copy_file(fs::path(planetoid_root()) / "cora" / "cora.labels.i64", root / "cora.labels.i64",
                fs::copy_options::overwrite_existing);
  {
    auto indices = read<int64_t>(root / "cora.feat.indices.i64");
    indices[10] = 1433;
    write(root / "cora.feat.indices.i64", indices);
    PDEQ_ASSERT_THROWS_WITH(data::load_planetoid(dir.str(), "cora"),
                            "cora.feat.indices.i64: feature index 1433 out of range (expected [0, 1433))");
  }
  fs::copy_file(fs::path(planetoid_root()) / "cora" / "cora.feat.indices.i64", root / "cora.feat.indices.i64",
                fs::copy_options::overwrite_existing);
  {
    auto val = read<int64_t>(root / "cora.val.i64");
    val[0] = 0;  // a training node
    write(root / "cora.val.i64", val);
    PDEQ_ASSERT_THROWS_WITH(data::load_planetoid(dir.str(), "cora"),
                            "cora.val.i64: node 0 is listed twice or also in another split");
  }
}

// Found by the planetoid fuzzer: a num_features beyond int64 saturated strtoll, and N x F overflowed inside
// LibTorch's sparse tensor constructor (c10::Error "numel: integer multiplication overflow").
TEST_F(PlanetoidTest, CountsBeyondTheLargestTensorAreNamed) {
  PDEQ_REQUIRE_GRAPH("cora");
  const auto root = copy_cora();
  const auto meta = root / "cora.meta.txt";
  std::string text;
  {
    std::ifstream in(meta);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const auto with_features = [&](const std::string& value) {
    std::string damaged = text;
    const auto at = damaged.find("num_features=1433");
    damaged.replace(at, std::string("num_features=1433").size(), "num_features=" + value);
    std::ofstream(meta, std::ios::trunc) << damaged;
  };
  with_features("44444444444444444444444444");
  PDEQ_ASSERT_THROWS_WITH(data::load_planetoid(dir.str(), "cora"),
                          "cora.meta.txt: key 'num_features' must be a non-negative integer, but got "
                          "'44444444444444444444444444'");
  with_features("9223372036854775807");
  PDEQ_ASSERT_THROWS_WITH(data::load_planetoid(dir.str(), "cora"),
                          "cora.meta.txt: num_nodes x num_features = 2708 x 9223372036854775807 exceeds the "
                          "largest tensor (2^63 - 1 elements)");
}

TEST_F(PlanetoidTest, BrokenRowPointerIsNamed) {
  PDEQ_REQUIRE_GRAPH("cora");
  const auto root = copy_cora();
  auto indptr = read<int64_t>(root / "cora.feat.indptr.i64");
  std::swap(indptr[5], indptr[6]);
  write(root / "cora.feat.indptr.i64", indptr);
  PDEQ_ASSERT_THROWS_WITH(data::load_planetoid(dir.str(), "cora"),
                          "cora.feat.indptr.i64: must be non-decreasing, but decreases at row 5");
}

}  // namespace
}  // namespace pdeq::test
