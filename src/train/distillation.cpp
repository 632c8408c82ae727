#include <pdeq/train/distillation.h>

#include <pdeq/quant/quantizer_set.h>
#include <pdeq/train/train_step.h>

#include <torch/nn/functional/loss.h>
#include <torch/utils.h>

#include <spdlog/spdlog.h>

#include <cmath>
#include <string>

namespace pdeq::train {
namespace F = torch::nn::functional;
namespace {

constexpr const char* kStateName = "distillation_high";

bool inside_state(const std::string& name) { return name.rfind(kStateName, 0) == 0; }

enum EpochSum { kCeHigh, kCeLow, kActivation, kCorrectHigh, kSamples, kEpochSums };

}  // namespace

std::vector<quant::FakeQuantize> model_activation_quantizers(torch::nn::Module& model) {
  std::vector<quant::FakeQuantize> out;
  for (const auto& [name, quantizer] : quant::QuantizerSet(model).activations()) {
    if (!inside_state(name)) out.push_back(quantizer);
  }
  return out;
}

std::vector<torch::nn::BatchNorm2d> model_batch_norms(torch::nn::Module& model) {
  std::vector<torch::nn::BatchNorm2d> out;
  for (const auto& item : model.named_modules()) {
    if (inside_state(item.key())) continue;
    if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(item.value())) out.emplace_back(bn);
  }
  return out;
}

torch::Tensor activation_loss(const std::vector<torch::Tensor>& high, const std::vector<torch::Tensor>& low,
                              int64_t low_bits) {
  TORCH_CHECK(!high.empty() && high.size() == low.size(), "activation_loss needs as many high (", high.size(),
              ") as low (", low.size(), ") activations, at least one");
  const double levels = std::pow(2.0, static_cast<double>(low_bits)) - 1.0;
  torch::Tensor sum;
  for (size_t l = 0; l < high.size(); ++l) {
    const auto h = high[l].to(torch::kFloat), lo = low[l].to(torch::kFloat);
    // The reference's threshold: one low-precision step of the high network's range, a constant.
    const double lambda = h.detach().abs().max().item<double>() / levels;
    const auto term = torch::softshrink(h - lo, lambda).pow(2).sum();
    sum = l == 0 ? term : sum + term;
  }
  return sum / static_cast<double>(high.size());
}

std::vector<torch::Tensor> stage_outputs(const models::ActivationTrace& trace) {
  std::vector<torch::Tensor> out;
  std::string stage;
  for (size_t i = 0; i < trace.names.size(); ++i) {
    const auto& name = trace.names[i];
    if (name.rfind("layer", 0) != 0) continue;
    const std::string this_stage = name.substr(0, name.find('.'));
    if (!out.empty() && this_stage == stage) {
      out.back() = trace.activations[i];
    } else {
      out.push_back(trace.activations[i]);
    }
    stage = this_stage;
  }
  return out.empty() ? trace.activations : out;
}

DistillationStateImpl::DistillationStateImpl(torch::nn::Module& model) {
  const auto quantizers = model_activation_quantizers(model);
  TORCH_CHECK_VALUE(!quantizers.empty(),
                    "distillation needs a model with activation quantizers (quant.act_bits < 32)");
  for (size_t i = 0; i < quantizers.size(); ++i) {
    auto copy = std::dynamic_pointer_cast<quant::FakeQuantizeImpl>(quantizers[i]->clone());
    activations.push_back(register_module("act" + std::to_string(i), quant::FakeQuantize(copy)));
  }
  const auto norms = model_batch_norms(model);
  for (size_t i = 0; i < norms.size(); ++i) {
    const auto& bn = norms[i];
    const std::string prefix = "bn" + std::to_string(i) + "_";
    running_mean.push_back(register_buffer(prefix + "running_mean", bn->running_mean.detach().clone()));
    running_var.push_back(register_buffer(prefix + "running_var", bn->running_var.detach().clone()));
    batches_tracked.push_back(
        register_buffer(prefix + "num_batches_tracked", bn->num_batches_tracked.detach().clone()));
  }
  epoch_sums = register_buffer("epoch_sums", torch::zeros({kEpochSums}, torch::kDouble));
}

HighPrecisionScope::HighPrecisionScope(torch::nn::Module& model, DistillationStateImpl& state,
                                       int64_t high_bits) {
  auto quantizers = model_activation_quantizers(model);
  auto norms = model_batch_norms(model);
  TORCH_CHECK(quantizers.size() == state.activations.size() && norms.size() == state.running_mean.size(),
              "the distillation state does not match the model");
  for (size_t i = 0; i < quantizers.size(); ++i) {
    auto& q = quantizers[i];
    alphas_.emplace_back(q, q->alpha);
    bits_.push_back(q->bits());
    q->alpha = state.activations[i]->alpha;
    q->set_bits(high_bits);
  }
  for (size_t i = 0; i < norms.size(); ++i) {
    auto& bn = norms[i];
    norms_.push_back({bn, bn->running_mean, bn->running_var, bn->num_batches_tracked});
    bn->running_mean = state.running_mean[i];
    bn->running_var = state.running_var[i];
    bn->num_batches_tracked = state.batches_tracked[i];
  }
}

HighPrecisionScope::~HighPrecisionScope() {
  for (size_t i = 0; i < alphas_.size(); ++i) {
    auto& [q, alpha] = alphas_[i];
    q->alpha = alpha;
    q->set_bits(bits_[i]);
  }
  for (auto& n : norms_) {
    n.norm->running_mean = n.mean;
    n.norm->running_var = n.var;
    n.norm->num_batches_tracked = n.tracked;
  }
}

DistillationLoss distillation_loss(models::ClassifierImpl& model, DistillationStateImpl& state,
                                   const torch::Tensor& images, const torch::Tensor& labels,
                                   const DistillationOptions& options, double label_smoothing,
                                   const ComputeMode& mode) {
  const auto quantizers = model_activation_quantizers(model);
  TORCH_CHECK(!quantizers.empty(), "distillation needs a model with activation quantizers");
  const int64_t low_bits = quantizers.front()->bits();
  models::ActivationTrace high_trace, low_trace;
  DistillationLoss out;
  // The high-precision network first, as the reference.
  {
    const HighPrecisionScope high(model, state, options.high_bits);
    const AutocastScope autocast(mode);
    out.logits_high = model.forward_traced(images, &high_trace).to(torch::kFloat);
  }
  {
    const AutocastScope autocast(mode);
    out.logits_low = model.forward_traced(images, &low_trace).to(torch::kFloat);
  }
  const auto ce = F::CrossEntropyFuncOptions().label_smoothing(label_smoothing);
  out.ce_high = F::cross_entropy(out.logits_high, labels, ce);
  out.ce_low = F::cross_entropy(out.logits_low, labels, ce);
  out.activation = activation_loss(stage_outputs(high_trace), stage_outputs(low_trace), low_bits);
  out.total = out.ce_high + out.ce_low + options.activation_loss * out.activation;
  return out;
}

DistillationTask::DistillationTask(std::unique_ptr<ImageClassificationTask> task,
                                   const DistillationOptions& options, double label_smoothing)
    : inner_(std::move(task)),
      state_(DistillationState(inner_->module())),
      options_(options),
      label_smoothing_(label_smoothing) {
  TORCH_CHECK_VALUE(options_.activation_loss >= 0, "the activation loss coefficient must be >= 0, got ",
                    options_.activation_loss);
  state_->to(inner_->device());
  inner_->module().register_module(kStateName, state_);
}

void DistillationTask::begin_epoch(int64_t epoch, int64_t first_step) {
  // A resumed epoch keeps the sums its checkpoint brought.
  if (first_step == 0) {
    const torch::NoGradGuard no_grad;
    state_->epoch_sums.zero_();
  }
  val_high_.reset();
  inner_->begin_epoch(epoch, first_step);
}

StepStats DistillationTask::train_step(torch::optim::Optimizer& optimizer) {
  auto batch = inner_->train_loader().next();
  TORCH_INTERNAL_ASSERT(batch.has_value(), "train loader ran out of batches inside an epoch");
  if (batch->labels.size(0) == 0) return empty_batch_step(optimizer);
  const auto& mode = inner_->compute_mode();
  const auto images = to_memory_format(batch->images.to(inner_->device()), mode.memory_format);
  const auto labels = batch->labels.to(inner_->device());
  auto& model = *inner_->model();
  const auto loss = distillation_loss(model, *state_, images, labels, options_, label_smoothing_, mode);
  optimizer.zero_grad();
  loss.total.backward();
  optimizer.step();
  const auto n = static_cast<double>(labels.size(0));
  const auto correct = [&](const torch::Tensor& logits) {
    return logits.detach().argmax(1).eq(labels).sum().item<double>();
  };
  {
    const torch::NoGradGuard no_grad;
    const std::vector<double> sums{loss.ce_high.item<double>() * n, loss.ce_low.item<double>() * n,
                                   loss.activation.item<double>() * n, correct(loss.logits_high), n};
    state_->epoch_sums.add_(torch::tensor(sums, torch::kDouble).to(state_->epoch_sums.device()));
  }
  return {loss.total.item<double>() * n, correct(loss.logits_low), labels.size(0)};
}

EvalStats DistillationTask::evaluate(EvalSplit split) {
  const EvalStats low = inner_->evaluate(split);
  const EvalStats high = evaluate_high(split);
  (split == EvalSplit::kVal ? val_high_ : test_high_) = high;
  spdlog::info("{}: low precision loss {:.4f} acc {:.2f}% | high precision (A{}) loss {:.4f} acc {:.2f}%",
               split == EvalSplit::kVal ? "val" : "test", low.loss, 100 * low.accuracy, options_.high_bits,
               high.loss, 100 * high.accuracy);
  return low;
}

EvalStats DistillationTask::evaluate_high(EvalSplit split) {
  const HighPrecisionScope high(module(), *state_, options_.high_bits);
  return inner_->evaluate(split);
}

nlohmann::json DistillationTask::metrics_extras() {
  const auto sums = state_->epoch_sums.to(torch::kCPU);
  const auto s = sums.accessor<double, 1>();
  const double n = std::max(1.0, s[kSamples]);
  return {
      {"train_loss_high", s[kCeHigh] / n},
      {"train_loss_low", s[kCeLow] / n},
      {"train_activation_loss", s[kActivation] / n},
      {"train_acc_high", s[kCorrectHigh] / n},
      {"val_loss_high", val_high_ ? nlohmann::json(val_high_->loss) : nlohmann::json()},
      {"val_acc_high", val_high_ ? nlohmann::json(val_high_->accuracy) : nlohmann::json()},
  };
}

nlohmann::json DistillationTask::summary_extras() const {
  auto extras = inner_->summary_extras();
  extras["distillation"] = {{"high_bits", options_.high_bits}, {"activation_loss", options_.activation_loss}};
  if (test_high_) {
    extras["test_accuracy_high"] = test_high_->accuracy;
    extras["test_loss_high"] = test_high_->loss;
  }
  return extras;
}

}  // namespace pdeq::train
