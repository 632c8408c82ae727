// Per-layer distance between two passes of the same network, the paper's measure of how quantization error
// propagates with depth (Ben-Yair et al. 2022, Sec. 5, Fig. 4).
#pragma once

#include <pdeq/models/classifier.h>

#include <string>
#include <vector>

namespace pdeq::analysis {

/// Accumulates, layer by layer over any number of batches, e_l = sqrt(sum ||a_l - r_l||^2 / numel(a_l)),
/// the reference implementation's metric, where a is the trace of one pass (e.g. quantized activations) and
/// r the trace of the reference pass (full-precision activations) on the same batch.
///
/// Example:
///   pdeq::analysis::LayerErrorAccumulator errors;
///   errors.add(quantized_trace, full_precision_trace);  // once per batch
///   errors.rms();                                       // one value per layer
class LayerErrorAccumulator {
 public:
  /// Both traces must name the same layers with the same shapes (else std::invalid_argument).
  void add(const models::ActivationTrace& trace, const models::ActivationTrace& reference);

  const std::vector<std::string>& names() const { return names_; }
  /// e_l per layer, in trace order.
  std::vector<double> rms() const;
  /// Mean of e_l over the layers where the two passes differ at all; layers that are identical in both
  /// (a float stem before any quantizer) say nothing about propagation and would dilute the mean.
  double mean_over_differing_layers() const;

 private:
  std::vector<std::string> names_;
  std::vector<double> squared_sum_;
  std::vector<double> count_;
};

}  // namespace pdeq::analysis
