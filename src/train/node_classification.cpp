#include <pdeq/train/node_classification.h>

#include <pdeq/train/train_step.h>

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

#include <spdlog/spdlog.h>

namespace pdeq::train {
namespace F = torch::nn::functional;

nn::GraphOperator make_graph_operator(const data::PlanetoidGraph& data, EdgeWeighting weighting) {
  TORCH_CHECK_VALUE(weighting.gcn || weighting.similarity,
                    "a graph operator needs gcn or similarity weights");
  const auto scale =
      weighting.similarity ? nn::feature_similarity_weights(data.features, data.edges) : torch::Tensor();
  return nn::GraphOperator(data.edges, data.num_nodes, data.self_loops, scale, /*gcn_weights=*/weighting.gcn);
}

NodeClassificationTask::NodeClassificationTask(data::PlanetoidGraph data, nn::GraphOperator graph,
                                               models::GraphModel model, double label_smoothing,
                                               torch::Device device)
    : data_(std::move(data)),
      graph_(graph.to(device)),
      model_(std::move(model)),
      device_(device),
      label_smoothing_(label_smoothing) {
  model_->to(device_);
  features_ = nn::NodeFeatures(data_.features).to(device_);
  labels_ = data_.labels.to(device_);
  train_ = data_.train.to(device_);
  val_ = data_.val.to(device_);
  test_ = data_.test.to(device_);
  spdlog::info("{}: {} nodes, {} edges, {} features, {} classes; {} train / {} val / {} test nodes",
               data_.name, data_.num_nodes, data_.num_edges(), data_.num_features, data_.num_classes,
               train_.numel(), val_.numel(), test_.numel());
}

void NodeClassificationTask::begin_epoch(int64_t /*epoch*/, int64_t /*first_step*/) { model_->train(); }

StepStats NodeClassificationTask::train_step(torch::optim::Optimizer& optimizer) {
  const auto logits = model_->forward(features_, graph_).index_select(0, train_);
  return cross_entropy_step(optimizer, logits, labels_.index_select(0, train_), label_smoothing_,
                            gradient_sync());
}

const torch::Tensor& NodeClassificationTask::nodes(EvalSplit split) const {
  return split == EvalSplit::kVal ? val_ : test_;
}

bool NodeClassificationTask::has_split(EvalSplit split) const { return nodes(split).numel() > 0; }

EvalStats NodeClassificationTask::evaluate(EvalSplit split) {
  const auto& idx = nodes(split);
  TORCH_CHECK(idx.numel() > 0, "this graph has no ", split == EvalSplit::kVal ? "validation" : "test",
              " nodes");
  const bool was_training = model_->is_training();
  model_->eval();
  torch::NoGradGuard no_grad;
  const auto logits = model_->forward(features_, graph_).index_select(0, idx);
  const auto labels = labels_.index_select(0, idx);
  const double loss = F::cross_entropy(logits, labels).item<double>();
  const double accuracy = logits.argmax(1).eq(labels).to(torch::kDouble).mean().item<double>();
  model_->train(was_training);
  return {loss, accuracy, idx.numel()};
}

void NodeClassificationTask::for_each_eval_batch(EvalSplit split,
                                                 const std::function<void(const TraceFn& run)>& visit) {
  TORCH_CHECK(has_split(split), "this graph has no nodes in the requested split");
  const bool was_training = model_->is_training();
  model_->eval();
  torch::NoGradGuard no_grad;
  visit([&](models::ActivationTrace& trace) { model_->forward_traced(features_, graph_, &trace); });
  model_->train(was_training);
}

}  // namespace pdeq::train
