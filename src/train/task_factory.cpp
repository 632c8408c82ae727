#include <pdeq/train/task_factory.h>

#include <pdeq/train/image_classification.h>

namespace pdeq::train {

std::unique_ptr<Task> make_task(const config::Config& config, torch::Device device) {
  return std::make_unique<ImageClassificationTask>(config, device);
}

}  // namespace pdeq::train
