#include <pdeq/experiment/from_config.h>

#include <algorithm>
#include <cstdlib>

namespace pdeq::experiment {

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
      .period_epochs(config.schedule.period_epochs)
      .reference_timing(config.schedule.timing == config::ScheduleTiming::kReference);
}

std::optional<models::TVOptions> tv_options(const config::TVConfig& config) {
  if (!config.enabled) return std::nullopt;
  models::TVOptions options;
  options.smooth.iters(config.iters).gamma_init(config.gamma_init).eps(config.eps);
  options.smooth.weight(config.weight == config::TVWeight::kPeronaMalik ? nn::TVWeight::kPeronaMalik
                                                                        : nn::TVWeight::kCharbonnier);
  options.block_input = config.where != config::TVPlacement::kInner;
  options.block_inner = config.where != config::TVPlacement::kInput;
  return options;
}

models::ModelOptions model_options(const config::Config& config, const data::DatasetInfo& dataset) {
  auto options = model_options(config, dataset.num_classes, dataset.channels);
  // auto: the ImageNet stem for images larger than 64 pixels (it divides the resolution by 4 before the
  // first stage, which 32x32 CIFAR images cannot afford).
  if (config.model.stem == config::Stem::kAuto) {
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
  options.transpose_impl = config.model.transpose == config::Transpose::kConvTranspose
                               ? nn::TransposeImpl::kConvTranspose
                               : nn::TransposeImpl::kFlippedConv;
  options.weight_quant = weight_quantizer_options(config.quant);
  options.act_quant = activation_quantizer_options(config.quant);
  options.tv = tv_options(config.model.tv);
  // Without a dataset (pdeq params), auto means the CIFAR stem.
  options.stem =
      config.model.stem == config::Stem::kImageNet ? models::Stem::kImageNet : models::Stem::kCifar;
  return options;
}

data::LoaderOptions train_loader_options(const config::DataConfig& config, const data::DatasetInfo& dataset) {
  // Training batch norm needs two samples per rank: a last batch with fewer joins the one before.
  return data::LoaderOptions()
      .batch_size(config.batch_size)
      .min_batch(2)
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

train::DistillationOptions distillation_options(const config::DistillationConfig& config) {
  train::DistillationOptions options;
  options.high_bits = config.high_bits;
  options.activation_loss = config.activation_loss;
  return options;
}

train::TrainerOptions trainer_options(const config::Config& config) {
  train::TrainerOptions options;
  options.epochs = config.train.epochs;
  options.base_lr = config.train.lr;
  options.lr_schedule = config.train.lr_schedule == config::LrSchedule::kConstant
                            ? train::LrScheduleKind::kConstant
                            : train::LrScheduleKind::kCosine;
  options.lr_per_epoch = config.train.lr_step == config::LrStep::kEpoch;
  options.warmup_epochs = config.train.warmup_epochs;
  options.min_lr = config.train.min_lr;
  options.weight_bits = bit_schedule_options(config.quant, config.quant.weight_bits);
  options.act_bits = bit_schedule_options(config.quant, config.quant.act_bits);
  options.log_every = config.train.log_every;
  options.eval_every = config.train.eval_every;
  options.checkpoint_every = config.train.checkpoint_every;
  options.metrics_every = config.train.metrics_every;
  options.plot_every = config.train.plot_every;
  options.tensorboard = config.train.tensorboard;
  options.patience = config.train.patience;
  return options;
}

models::GraphModelOptions graph_model_options(const config::Config& config, int64_t in_features,
                                              int64_t num_classes) {
  models::GraphModelOptions options;
  options.in_features = in_features;
  options.num_classes = num_classes;
  const config::GraphModelConfig& graph = config.model.graph;
  options.channels = graph.channels;
  options.layers = graph.layers;
  options.step_size = config.model.step_size;
  options.dropout = graph.dropout;
  options.input_dropout = graph.input_dropout;
  options.bias = graph.bias;
  options.init =
      graph.init == config::GraphInit::kGlorot ? models::GraphInit::kGlorot : models::GraphInit::kLinear;
  options.activation = graph.edge_activation == config::EdgeActivation::kRelu ? models::EdgeActivation::kReLU
                                                                              : models::EdgeActivation::kTanh;
  options.dropout_on_edges = graph.dropout_on_edges;
  options.quantize_input = graph.quantize_input;
  options.quantize_gradient = graph.quantize_gradient;
  options.quantize_edges = graph.quantize_edges;
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

train::EdgeWeighting edge_weighting(const config::DataConfig& config) {
  train::EdgeWeighting weighting;
  weighting.gcn = config.edge_weights != config::EdgeWeights::kSimilarity;
  weighting.similarity = config.edge_weights != config::EdgeWeights::kGcn;
  return weighting;
}

data::Normalization normalization(const config::DataConfig& config) {
  return config.normalization == config::Normalization::kReference ? data::Normalization::kReference
                                                                   : data::Normalization::kDataset;
}

data::DatasetInfo dataset_info(const config::DataConfig& config) {
  if (is_segmentation_dataset(config.dataset)) {
    auto info = segmentation_info(config).info;
    info.height = info.width = config.image_size;
    return info;
  }
  return config.dataset == "image_folder"
             ? data::image_folder_info(config.root, config.image_size)
             : data::with_normalization(data::dataset_info(config.dataset), normalization(config));
}

bool is_segmentation_dataset(const std::string& dataset) {
  return dataset == "camvid" || dataset == "cityscapes";
}

models::Classifier make_image_model(const config::Config& config, const data::DatasetInfo& dataset) {
  const auto options = model_options(config, dataset);
  return is_segmentation_dataset(config.data.dataset)
             ? models::make_segmentation_model(config.model.name, options)
             : models::make_model(config.model.name, options);
}

data::SegmentationInfo segmentation_info(const config::DataConfig& config) {
  std::string root = config.root;
  if (root.empty()) {
    const char* dir = std::getenv("PDEQ_DATA_DIR");
    root = (dir != nullptr && *dir != '\0' ? std::string(dir) : std::string("../shared/data")) + "/" +
           config.dataset;
  }
  TORCH_CHECK_VALUE(is_segmentation_dataset(config.dataset),
                    "data.dataset: expected camvid or cityscapes, got ", config.dataset);
  return config.dataset == "camvid" ? data::camvid_info(root) : data::cityscapes_info(root);
}

data::SegmentationTransformOptions segmentation_transform_options(const config::DataConfig& config,
                                                                  bool train) {
  return data::SegmentationTransformOptions()
      .resize(config.resize)
      .crop_size(config.image_size)
      .train(train)
      .scale_min(config.augment ? config.scale_min : 1.0)
      .scale_max(config.augment ? config.scale_max : 1.0)
      .flip(config.augment)
      .mean(data::kImageNetMean)  // every segmentation dataset here is normalised with ImageNet's statistics
      .std(data::kImageNetStd)
      .workers(config.workers)
      .skip_bad_images(config.skip_bad_images)
      .max_pixels(config.max_image_pixels);
}

train::SegmentationOptions segmentation_task_options(const config::Config& config,
                                                     const data::DatasetInfo& dataset,
                                                     std::vector<double> class_weights, data::Shard shard) {
  train::SegmentationOptions options;
  options.image = image_task_options(config, dataset, shard);
  options.train_transform = segmentation_transform_options(config.data, /*train=*/true);
  options.eval_transform = segmentation_transform_options(config.data, /*train=*/false);
  options.class_weights = std::move(class_weights);
  options.label_smoothing = config.train.label_smoothing;
  return options;
}

data::SplitOptions split_options(const config::DataConfig& config) {
  data::SplitOptions options;
  options.val_size = config.val_size;
  options.split_seed = config.split_seed;
  options.limit_train = config.limit_train;
  options.limit_val = config.limit_val;
  options.limit_test = config.limit_test;
  return options;
}

data::ImageDataOptions image_data_options(const config::DataConfig& config) {
  data::ImageDataOptions options;
  options.dataset = config.dataset;
  options.root = config.root;
  options.split = split_options(config);
  options.normalization = normalization(config);
  return options;
}

train::ComputeMode compute_mode(const config::TrainConfig& config) {
  train::ComputeMode mode;
  mode.memory_format = config.memory_format == config::MemoryFormat::kChannelsLast
                           ? torch::MemoryFormat::ChannelsLast
                           : torch::MemoryFormat::Contiguous;
  mode.bf16 = config.precision == config::Precision::kBf16;
  return mode;
}

train::ImageClassificationOptions image_task_options(const config::Config& config,
                                                     const data::DatasetInfo& dataset, data::Shard shard) {
  train::ImageClassificationOptions options;
  // Data-parallel ranks take their rows of every batch (the batches are those of one process).
  options.train_loader = train_loader_options(config.data, dataset).shard(shard);
  options.eval_loader = eval_loader_options(config.data, dataset).shard(shard);
  options.train_transform = image_transform_options(config.data, /*train=*/true);
  options.eval_transform = image_transform_options(config.data, /*train=*/false);
  options.seed = config.train.seed;
  options.mode = compute_mode(config.train);
  options.label_smoothing = config.train.label_smoothing;
  return options;
}

train::OptimizerOptions optimizer_options(const config::TrainConfig& config) {
  const auto group = [](const config::ParamGroupConfig& g) {
    train::ParamGroupOptions options;
    options.enabled = g.enabled;
    options.prefix = g.prefix;
    options.lr = g.lr;
    options.weight_decay = g.weight_decay;
    return options;
  };
  train::OptimizerOptions options;
  options.kind = config.optimizer == config::Optimizer::kSgd    ? train::OptimizerKind::kSgd
                 : config.optimizer == config::Optimizer::kAdam ? train::OptimizerKind::kAdam
                                                                : train::OptimizerKind::kAdamW;
  options.lr = config.lr;
  options.momentum = config.momentum;
  options.nesterov = config.nesterov;
  options.weight_decay = config.weight_decay;
  options.decay_scales_norms_biases = config.decay_scales_norms_biases;
  options.beta1 = config.beta1;
  options.beta2 = config.beta2;
  options.scale_group = group(config.scale_group);
  options.layer_group = group(config.layer_group);
  return options;
}

}  // namespace pdeq::experiment
