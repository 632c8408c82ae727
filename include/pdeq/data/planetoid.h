// Planetoid citation graphs (Cora, CiteSeer, PubMed) for semi-supervised node classification, read from the
// plain binary arrays described in ../shared/data/planetoid/README.md.
#pragma once

#include <torch/arg.h>
#include <torch/types.h>

#include <string>
#include <vector>

namespace pdeq::data {

/// Options of load_planetoid.
struct PlanetoidOptions {
  /// Divide every feature row by its sum (rows summing to 0 stay 0), as Kipf & Welling's GCN does.
  TORCH_ARG(bool, normalize_features) = true;
};

/// One citation graph with the standard (Planetoid/GCN) split. Features are kept sparse (CSR as read; the
/// models multiply them with a dense weight), nodes are numbered 0..N-1 as in Kipf's load_data().
struct PlanetoidGraph {
  std::string name;  ///< cora | citeseer | pubmed
  int64_t num_nodes = 0, num_features = 0, num_classes = 0;
  /// Features as a sparse COO tensor [N, F] (float, coalesced).
  torch::Tensor features;
  torch::Tensor labels;  ///< [N] int64, class in [0, C) or -1 (no label)
  /// Undirected edges without self-loops, [E, 2] int64 with u < v, unique, sorted.
  torch::Tensor edges;
  torch::Tensor self_loops;        ///< [S] int64 nodes with a self-loop in the raw graph
  torch::Tensor train, val, test;  ///< node indices [n] int64
  int64_t num_edges() const { return edges.size(0); }
  /// Dense [N, F] copy of the features (tests, small graphs).
  torch::Tensor dense_features() const { return features.to_dense(); }
};

/// The names load_planetoid accepts.
std::vector<std::string> planetoid_names();

/// Default folder of the Planetoid data: `../shared/data/planetoid` relative to the working directory (the
/// repository root), or `$PDEQ_DATA_DIR/planetoid` when that variable is set.
std::string planetoid_default_root();

/// Reads `<root>/<name>/<name>.*` and validates every file: sizes consistent with the counts of
/// `<name>.meta.txt`, CSR row pointer monotone from 0 to NNZ, feature indices in [0, F), labels in
/// [-1, C), edges in range with u < v, split indices in range, labelled and disjoint. Any problem throws
/// std::runtime_error naming the file and what was expected; a missing feature file (PubMed here) names
/// that file.
///
/// Example:
///   auto cora = pdeq::data::load_planetoid("../shared/data/planetoid", "cora");
///   // cora.num_nodes == 2708, cora.train.numel() == 140
PlanetoidGraph load_planetoid(const std::string& root, const std::string& name,
                              const PlanetoidOptions& options = {});

}  // namespace pdeq::data
