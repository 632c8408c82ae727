// Planetoid loader: flat little-endian arrays + meta.txt counts, every file checked before use.
#include <pdeq/data/planetoid.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace pdeq::data {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const fs::path& file, const std::string& what) {
  throw std::runtime_error(file.string() + ": " + what);
}

/// `key=value` lines of `<name>.meta.txt`.
std::map<std::string, std::string> read_meta(const fs::path& file) {
  std::ifstream in(file);
  if (!in) fail(file, "cannot open the Planetoid meta file (expected key=value counts)");
  std::map<std::string, std::string> meta;
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    meta[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return meta;
}

int64_t meta_count(const std::map<std::string, std::string>& meta, const std::string& key,
                   const fs::path& file) {
  const auto it = meta.find(key);
  if (it == meta.end()) fail(file, "missing key '" + key + "' (expected a non-negative integer)");
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(it->second.c_str(), &end, 10);
  if (end == it->second.c_str() || *end != '\0' || value < 0 || errno == ERANGE) {
    fail(file, "key '" + key + "' must be a non-negative integer, but got '" + it->second + "'");
  }
  return value;
}

/// A flat array of `expected` elements of T (-1: any length).
template <typename T>
std::vector<T> read_array(const fs::path& file, int64_t expected, const std::string& meaning) {
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  if (!in) fail(file, "cannot open (expected " + meaning + ")");
  const auto bytes = static_cast<int64_t>(in.tellg());
  if (bytes % static_cast<int64_t>(sizeof(T)) != 0) {
    fail(file, "size " + std::to_string(bytes) + " bytes is not a multiple of " + std::to_string(sizeof(T)) +
                   " (expected " + meaning + ")");
  }
  const int64_t count = bytes / static_cast<int64_t>(sizeof(T));
  if (expected >= 0 && count != expected) {
    fail(file, "holds " + std::to_string(count) + " elements, expected " + std::to_string(expected) + " (" +
                   meaning + ")");
  }
  std::vector<T> values(static_cast<size_t>(count));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(values.data()), bytes);
  if (!in) fail(file, "read failed");
  return values;
}

torch::Tensor to_tensor(const std::vector<int64_t>& v) {
  return torch::from_blob(const_cast<int64_t*>(v.data()), {static_cast<int64_t>(v.size())}, torch::kInt64)
      .clone();
}

void check_split(const fs::path& file, const std::vector<int64_t>& nodes, const std::vector<int64_t>& labels,
                 std::vector<char>& used) {
  const auto n = static_cast<int64_t>(labels.size());
  for (const int64_t v : nodes) {
    if (v < 0 || v >= n) {
      fail(file, "node " + std::to_string(v) + " out of range (expected node ids in [0, " +
                     std::to_string(n) + "))");
    }
    if (labels[static_cast<size_t>(v)] < 0) fail(file, "node " + std::to_string(v) + " has no label");
    if (used[static_cast<size_t>(v)]) {
      fail(file, "node " + std::to_string(v) + " is listed twice or also in another split");
    }
    used[static_cast<size_t>(v)] = 1;
  }
}

}  // namespace

std::vector<std::string> planetoid_names() { return {"cora", "citeseer", "pubmed"}; }

std::string planetoid_default_root() {
  const char* dir = std::getenv("PDEQ_DATA_DIR");
  return (dir != nullptr && *dir != '\0' ? std::string(dir) : std::string("../shared/data")) + "/planetoid";
}

PlanetoidGraph load_planetoid(const std::string& root, const std::string& name,
                              const PlanetoidOptions& options) {
  const auto names = planetoid_names();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    throw std::invalid_argument("Planetoid dataset must be one of cora, citeseer, pubmed, but got '" + name +
                                "'");
  }
  const fs::path dir = fs::path(root) / name;
  auto file = [&](const std::string& suffix) { return dir / (name + "." + suffix); };
  const fs::path meta_file = file("meta.txt");
  const auto meta = read_meta(meta_file);

  PlanetoidGraph g;
  g.name = name;
  g.num_nodes = meta_count(meta, "num_nodes", meta_file);
  g.num_features = meta_count(meta, "num_features", meta_file);
  g.num_classes = meta_count(meta, "num_classes", meta_file);
  const int64_t n = g.num_nodes, f = g.num_features, c = g.num_classes;
  if (n > 0 && f > std::numeric_limits<int64_t>::max() / n) {  // the [N, F] feature matrix's element count
    fail(meta_file, "num_nodes x num_features = " + std::to_string(n) + " x " + std::to_string(f) +
                        " exceeds the largest tensor (2^63 - 1 elements)");
  }
  const int64_t num_edges = meta_count(meta, "undirected_unique_edges_no_selfloops", meta_file);

  // Features (CSR). PubMed's converter wrote none: name the first missing file.
  for (const char* part : {"feat.indptr.i64", "feat.indices.i64", "feat.data.f32"}) {
    if (!fs::exists(file(part))) {
      throw std::runtime_error(file(part).string() + ": feature file not found; the " + name +
                               " features are missing from " + dir.string() + " (see its README.md)");
    }
  }
  const int64_t nnz = meta_count(meta, "feature_nnz", meta_file);
  const auto indptr =
      read_array<int64_t>(file("feat.indptr.i64"), n + 1, "int64 CSR row pointer, N+1 entries");
  if (indptr.front() != 0 || indptr.back() != nnz) {
    fail(file("feat.indptr.i64"), "must start at 0 and end at NNZ = " + std::to_string(nnz) + ", but got " +
                                      std::to_string(indptr.front()) + " .. " +
                                      std::to_string(indptr.back()));
  }
  for (int64_t i = 0; i < n; ++i) {
    if (indptr[i + 1] < indptr[i]) {
      fail(file("feat.indptr.i64"), "must be non-decreasing, but decreases at row " + std::to_string(i));
    }
  }
  const auto indices =
      read_array<int64_t>(file("feat.indices.i64"), nnz, "int64 CSR feature index per non-zero");
  for (const int64_t j : indices) {
    if (j < 0 || j >= f) {
      fail(file("feat.indices.i64"),
           "feature index " + std::to_string(j) + " out of range (expected [0, " + std::to_string(f) + "))");
    }
  }
  auto data = read_array<float>(file("feat.data.f32"), nnz, "float32 CSR value per non-zero");
  if (options.normalize_features()) {
    for (int64_t i = 0; i < n; ++i) {
      double sum = 0.0;
      for (int64_t k = indptr[i]; k < indptr[i + 1]; ++k) sum += data[static_cast<size_t>(k)];
      if (sum == 0.0) continue;
      for (int64_t k = indptr[i]; k < indptr[i + 1]; ++k) {
        data[static_cast<size_t>(k)] = static_cast<float>(data[static_cast<size_t>(k)] / sum);
      }
    }
  }
  std::vector<int64_t> rows(static_cast<size_t>(nnz));
  for (int64_t i = 0; i < n; ++i) {
    std::fill(rows.begin() + indptr[i], rows.begin() + indptr[i + 1], i);
  }
  const auto coo = torch::stack({to_tensor(rows), to_tensor(indices)});
  const auto values = torch::from_blob(data.data(), {nnz}, torch::kFloat).clone();
  g.features = torch::sparse_coo_tensor(coo, values, {n, f}).coalesce();

  // Labels.
  const auto labels = read_array<int64_t>(file("labels.i64"), n, "int64 label per node");
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y = labels[static_cast<size_t>(i)];
    if (y < -1 || y >= c) {
      fail(file("labels.i64"), "node " + std::to_string(i) + " has label " + std::to_string(y) +
                                   " (expected -1 or a class in [0, " + std::to_string(c) + "))");
    }
  }
  g.labels = to_tensor(labels);

  // Edges: (u, v), u < v, strictly increasing in (u, v).
  const auto edges = read_array<int64_t>(file("edges.i64"), 2 * num_edges, "int64 pairs (u, v), 2E entries");
  for (int64_t k = 0; k < num_edges; ++k) {
    const int64_t u = edges[static_cast<size_t>(2 * k)], v = edges[static_cast<size_t>(2 * k + 1)];
    if (u < 0 || v >= n || u >= v) {
      fail(file("edges.i64"), "edge " + std::to_string(k) + " is (" + std::to_string(u) + ", " +
                                  std::to_string(v) + "), expected 0 <= u < v < " + std::to_string(n));
    }
    if (k > 0) {
      const int64_t pu = edges[static_cast<size_t>(2 * k - 2)], pv = edges[static_cast<size_t>(2 * k - 1)];
      if (pu > u || (pu == u && pv >= v)) {
        fail(file("edges.i64"), "edge " + std::to_string(k) + " is not after edge " + std::to_string(k - 1) +
                                    " (expected unique edges sorted by (u, v))");
      }
    }
  }
  g.edges = to_tensor(edges).reshape({num_edges, 2});

  const auto loops = read_array<int64_t>(file("selfloops.i64"), meta_count(meta, "self_loops", meta_file),
                                         "int64 node ids with a self-loop");
  for (const int64_t v : loops) {
    if (v < 0 || v >= n) fail(file("selfloops.i64"), "node " + std::to_string(v) + " out of range");
  }
  g.self_loops = to_tensor(loops);

  std::vector<char> used(static_cast<size_t>(n), 0);
  const auto train =
      read_array<int64_t>(file("train.i64"), meta_count(meta, "train", meta_file), "train node ids");
  const auto val =
      read_array<int64_t>(file("val.i64"), meta_count(meta, "val", meta_file), "validation node ids");
  const auto test =
      read_array<int64_t>(file("test.i64"), meta_count(meta, "test", meta_file), "test node ids");
  check_split(file("train.i64"), train, labels, used);
  check_split(file("val.i64"), val, labels, used);
  check_split(file("test.i64"), test, labels, used);
  g.train = to_tensor(train);
  g.val = to_tensor(val);
  g.test = to_tensor(test);
  return g;
}

}  // namespace pdeq::data
