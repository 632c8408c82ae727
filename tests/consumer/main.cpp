// Uses the installed library through its umbrella header: builds a quantized ResNet-20 and runs it.
#include <pdeq/pdeq.h>

#include <iostream>

int main() {
  pdeq::models::ModelOptions options;
  options.weight_quant.bits(4);
  options.act_quant.bits(4);
  auto model = pdeq::models::make_model("resnet20", options);
  model->eval();
  const auto logits = model->forward(torch::randn({2, 3, 32, 32}));
  const auto count = pdeq::analysis::count_params(*model);
  std::cout << "logits " << logits.sizes() << ", float params " << count.model() << std::endl;
  return logits.size(1) == 10 && count.model() == 272474 ? 0 : 1;
}
