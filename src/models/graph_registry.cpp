// Graph model registry and the sparse dropout shared by the graph models.
#include <pdeq/models/gcn.h>
#include <pdeq/models/graph_model.h>
#include <pdeq/models/pde_gcn.h>

#include <torch/nn/functional/dropout.h>
#include <torch/torch.h>

#include <algorithm>
#include <stdexcept>

namespace pdeq::models {

std::vector<std::string> graph_model_names() { return {"pde_gcn", "pde_gcn_nonsym", "gcn"}; }

bool is_graph_model(const std::string& name) {
  const auto names = graph_model_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

GraphModel make_graph_model(const std::string& name, const GraphModelOptions& o) {
  if (name == "pde_gcn" || name == "pde_gcn_nonsym") {
    return std::make_shared<PdeGcnImpl>(PdeGcnOptions(o.in_features, o.num_classes)
                                            .channels(o.channels)
                                            .layers(o.layers)
                                            .step_size(o.step_size)
                                            .symmetric(name == "pde_gcn")
                                            .dropout(o.dropout)
                                            .input_dropout(o.input_dropout)
                                            .bias(o.bias)
                                            .init(o.init)
                                            .activation(o.activation)
                                            .dropout_on_edges(o.dropout_on_edges)
                                            .weight_quant(o.weight_quant)
                                            .act_quant(o.act_quant)
                                            .quantize_input(o.quantize_input)
                                            .quantize_gradient(o.quantize_gradient)
                                            .quantize_edges(o.quantize_edges));
  }
  if (name == "gcn") {
    return std::make_shared<GcnImpl>(GcnOptions(o.in_features, o.num_classes)
                                         .hidden(o.channels)
                                         .layers(o.layers)
                                         .dropout(o.dropout)
                                         .weight_quant(o.weight_quant)
                                         .act_quant(o.act_quant));
  }
  throw std::invalid_argument("graph model must be one of pde_gcn, pde_gcn_nonsym, gcn, but got '" + name +
                              "'");
}

}  // namespace pdeq::models
