#include <pdeq/analysis/params.h>

#include <pdeq/quant/fake_quantize.h>

namespace pdeq::analysis {
namespace {

int64_t alpha_elements(const torch::nn::Module& module) {
  const auto* quantizer = module.as<quant::FakeQuantizeImpl>();
  return quantizer != nullptr && quantizer->alpha.defined() ? quantizer->alpha.numel() : 0;
}

}  // namespace

ParamCount count_params(const torch::nn::Module& module) {
  ParamCount count;
  for (const auto& parameter : module.parameters()) count.total += parameter.numel();
  // modules(include_self=true) needs the root to be owned by a shared_ptr; visit the root by hand instead.
  count.quantizer += alpha_elements(module);
  for (const auto& child : module.modules(/*include_self=*/false)) count.quantizer += alpha_elements(*child);
  return count;
}

}  // namespace pdeq::analysis
