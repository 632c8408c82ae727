#include <pdeq/train/from_config.h>

#include <algorithm>

namespace pdeq::train {

quant::FakeQuantizeOptions weight_quantizer_options(const config::QuantConfig& config) {
  return quant::FakeQuantizeOptions(quant::QuantTarget::kWeight)
      .bits(config.weight_bits)
      .init_alpha(config.weight_alpha_init)
      .standardize(config.weight_standardize)
      .channels(config.per_channel ? -1 : 0);
}

quant::FakeQuantizeOptions activation_quantizer_options(const config::QuantConfig& config) {
  return quant::FakeQuantizeOptions(quant::QuantTarget::kActivation)
      .bits(config.act_bits)
      .init_alpha(config.act_alpha_init)
      .is_signed(config.signed_activations)
      .midrise(config.midrise_activations);
}

quant::BitScheduleOptions bit_schedule_options(const config::QuantConfig& config, int64_t target_bits) {
  return quant::BitScheduleOptions(target_bits)
      .enabled(config.schedule.enabled)
      .start_bits(config.schedule.start_bits)
      .step(config.schedule.step)
      .period_epochs(config.schedule.period_epochs);
}

std::optional<models::TVOptions> tv_options(const config::TVConfig& config) {
  if (!config.enabled) return std::nullopt;
  models::TVOptions options;
  options.smooth.iters(config.iters).gamma_init(config.gamma_init).eps(config.eps);
  options.smooth.weight(config.weight == "perona_malik" ? nn::TVWeight::kPeronaMalik
                                                        : nn::TVWeight::kCharbonnier);
  options.block_input = config.where != "inner";
  options.block_inner = config.where != "input";
  return options;
}

models::ModelOptions model_options(const config::Config& config, const data::DatasetInfo& dataset) {
  auto options = model_options(config, dataset.num_classes, dataset.channels);
  // auto: the ImageNet stem for images larger than 64 pixels (it divides the resolution by 4 before the
  // first stage, which 32x32 CIFAR images cannot afford).
  if (config.model.stem == "auto") {
    options.stem =
        std::max(dataset.height, dataset.width) > 64 ? models::Stem::kImageNet : models::Stem::kCifar;
  }
  return options;
}

models::ModelOptions model_options(const config::Config& config, int64_t num_classes, int64_t in_channels) {
  models::ModelOptions options;
  options.num_classes = num_classes;
  options.in_channels = in_channels;
  options.step_size = config.model.step_size;
  options.stable = config.model.stable;
  options.transpose_impl = config.model.transpose == "conv_transpose" ? nn::TransposeImpl::kConvTranspose
                                                                      : nn::TransposeImpl::kFlippedConv;
  options.weight_quant = weight_quantizer_options(config.quant);
  options.act_quant = activation_quantizer_options(config.quant);
  options.tv = tv_options(config.model.tv);
  // Without a dataset (pdeq params), auto means the CIFAR stem.
  options.stem = config.model.stem == "imagenet" ? models::Stem::kImageNet : models::Stem::kCifar;
  return options;
}

data::LoaderOptions train_loader_options(const config::DataConfig& config, const data::DatasetInfo& dataset) {
  return data::LoaderOptions()
      .batch_size(config.batch_size)
      .shuffle(true)
      .augment(config.augment)
      .prefetch(config.prefetch)
      .mean(dataset.mean)
      .std(dataset.std);
}

data::LoaderOptions eval_loader_options(const config::DataConfig& config, const data::DatasetInfo& dataset) {
  return data::LoaderOptions()
      .batch_size(config.eval_batch_size)
      .prefetch(config.prefetch)
      .mean(dataset.mean)
      .std(dataset.std);
}

data::ImageTransformOptions image_transform_options(const config::DataConfig& config, bool train) {
  return data::ImageTransformOptions()
      .resize(config.resize)
      .image_size(config.image_size)
      .train(train && config.augment)
      .random_resized_crop(config.random_resized_crop)
      .workers(config.workers)
      .skip_bad_images(config.skip_bad_images)
      .max_pixels(config.max_image_pixels);
}

TrainerOptions trainer_options(const config::Config& config) {
  TrainerOptions options;
  options.epochs = config.train.epochs;
  options.base_lr = config.train.lr;
  options.lr_schedule = parse_lr_schedule(config.train.lr_schedule);
  options.warmup_epochs = config.train.warmup_epochs;
  options.min_lr = config.train.min_lr;
  options.weight_bits = bit_schedule_options(config.quant, config.quant.weight_bits);
  options.act_bits = bit_schedule_options(config.quant, config.quant.act_bits);
  options.log_every = config.train.log_every;
  options.eval_every = config.train.eval_every;
  options.checkpoint_every = config.train.checkpoint_every;
  options.metrics_every = config.train.metrics_every;
  options.plot_every = config.train.plot_every;
  options.patience = config.train.patience;
  return options;
}

models::GraphModelOptions graph_model_options(const config::Config& config, int64_t in_features,
                                              int64_t num_classes) {
  models::GraphModelOptions options;
  options.in_features = in_features;
  options.num_classes = num_classes;
  options.channels = config.model.channels;
  options.layers = config.model.layers;
  options.step_size = config.model.step_size;
  options.dropout = config.model.dropout;
  options.input_dropout = config.model.input_dropout;
  options.bias = config.model.graph_bias;
  options.init =
      config.model.graph_init == "glorot" ? models::GraphInit::kGlorot : models::GraphInit::kLinear;
  options.activation =
      config.model.edge_activation == "relu" ? models::EdgeActivation::kReLU : models::EdgeActivation::kTanh;
  options.dropout_on_edges = config.model.dropout_on_edges;
  options.quantize_input = config.model.quantize_input;
  options.quantize_gradient = config.model.quantize_gradient;
  options.quantize_edges = config.model.quantize_edges;
  options.weight_quant = weight_quantizer_options(config.quant).channels(0);
  options.act_quant = activation_quantizer_options(config.quant);
  return options;
}

data::PlanetoidOptions planetoid_options(const config::DataConfig& config) {
  return data::PlanetoidOptions().normalize_features(config.normalize_features);
}

std::string planetoid_root(const config::DataConfig& config) {
  return config.root.empty() ? data::planetoid_default_root() : config.root;
}

}  // namespace pdeq::train
