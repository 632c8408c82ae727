// Semi-supervised node classification on a Planetoid graph: full-batch epochs, loss on the training nodes.
#pragma once

#include <pdeq/data/planetoid.h>
#include <pdeq/models/graph_model.h>
#include <pdeq/nn/graph_ops.h>
#include <pdeq/train/task.h>

namespace pdeq::train {

/// How a graph's edges are weighted in its gradient operator G (data.edge_weights): gcn 1/sqrt(d_u d_v),
/// similarity exp(-2 D_uv / std D) with D the squared feature distance (the authors' quantized driver), or
/// both (their product).
struct EdgeWeighting {
  bool gcn = true;
  bool similarity = false;
};

/// The graph operator of `data` weighted as `weighting` says.
nn::GraphOperator make_graph_operator(const data::PlanetoidGraph& data, EdgeWeighting weighting);

/// One step = one epoch = one forward/backward over the whole graph; the loss is the cross-entropy on the
/// training nodes. Evaluation runs the model in eval mode on the whole graph and scores the split's nodes;
/// for_each_eval_batch visits one batch (the whole graph) whose trace holds "layer0", "layer1", ...
class NodeClassificationTask : public Task {
 public:
  /// Moves the graph, its operator and `model` to `device`.
  NodeClassificationTask(data::PlanetoidGraph data, nn::GraphOperator graph, models::GraphModel model,
                         double label_smoothing, torch::Device device);

  torch::nn::Module& module() override { return *model_; }
  const models::GraphModel& model() const { return model_; }
  const data::PlanetoidGraph& graph() const { return data_; }

  int64_t steps_per_epoch() const override { return 1; }
  void begin_epoch(int64_t epoch, int64_t first_step) override;
  StepStats train_step(torch::optim::Optimizer& optimizer) override;
  bool has_split(EvalSplit split) const override;
  EvalStats evaluate(EvalSplit split) override;
  void for_each_eval_batch(EvalSplit split, const std::function<void(const TraceFn& run)>& visit) override;
  std::string sample_unit() const override { return "node"; }

 private:
  const torch::Tensor& nodes(EvalSplit split) const;

  data::PlanetoidGraph data_;
  nn::GraphOperator graph_;
  models::GraphModel model_;
  torch::Device device_;
  double label_smoothing_;
  nn::NodeFeatures features_;
  torch::Tensor labels_, train_, val_, test_;
};

}  // namespace pdeq::train
