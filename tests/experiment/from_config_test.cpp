// The bridge from config to the options of the layers below: every enum-like value maps to its own option.
#include <pdeq/experiment/from_config.h>

#include "test_support.h"

namespace pdeq::experiment {
namespace {

TEST(FromConfigTest, OptimizerOfEachKindWithItsGroups) {
  config::TrainConfig c;
  EXPECT_EQ(optimizer_options(c).kind, train::OptimizerKind::kSgd);
  c.optimizer = config::Optimizer::kAdam;
  EXPECT_EQ(optimizer_options(c).kind, train::OptimizerKind::kAdam);
  c.optimizer = config::Optimizer::kAdamW;
  c.lr = 0.02;
  c.momentum = 0.5;
  c.nesterov = true;
  c.weight_decay = 0.3;
  c.decay_scales_norms_biases = false;
  c.beta1 = 0.8;
  c.beta2 = 0.99;
  c.layer_group = {true, "layers.", 1e-3, 0.1};
  c.scale_group = {true, "", 0.0, 0.2};
  const auto o = optimizer_options(c);
  EXPECT_EQ(o.kind, train::OptimizerKind::kAdamW);
  EXPECT_EQ(o.lr, 0.02);
  EXPECT_EQ(o.momentum, 0.5);
  EXPECT_TRUE(o.nesterov);
  EXPECT_EQ(o.weight_decay, 0.3);
  EXPECT_FALSE(o.decay_scales_norms_biases);
  EXPECT_EQ(o.beta1, 0.8);
  EXPECT_EQ(o.beta2, 0.99);
  EXPECT_TRUE(o.layer_group.enabled);
  EXPECT_EQ(o.layer_group.prefix, "layers.");
  EXPECT_EQ(o.layer_group.lr, 1e-3);
  EXPECT_EQ(o.layer_group.weight_decay, 0.1);
  EXPECT_TRUE(o.scale_group.enabled);
  EXPECT_EQ(o.scale_group.weight_decay, 0.2);
}

TEST(FromConfigTest, ComputeModeAndSchedule) {
  config::Config c;
  EXPECT_EQ(compute_mode(c.train).memory_format, torch::MemoryFormat::ChannelsLast);
  EXPECT_FALSE(compute_mode(c.train).bf16);
  c.train.memory_format = config::MemoryFormat::kContiguous;
  c.train.precision = config::Precision::kBf16;
  EXPECT_EQ(compute_mode(c.train).memory_format, torch::MemoryFormat::Contiguous);
  EXPECT_TRUE(compute_mode(c.train).bf16);
  EXPECT_EQ(trainer_options(c).lr_schedule, train::LrScheduleKind::kCosine);
  c.train.lr_schedule = config::LrSchedule::kConstant;
  EXPECT_EQ(trainer_options(c).lr_schedule, train::LrScheduleKind::kConstant);
}

TEST(FromConfigTest, TVPlacementWeightAndTransposeAndStem) {
  config::Config c;
  EXPECT_FALSE(tv_options(c.model.tv).has_value());
  c.model.tv.enabled = true;
  for (const auto& [where, input, inner] :
       std::vector<std::tuple<config::TVPlacement, bool, bool>>{{config::TVPlacement::kAll, true, true},
                                                                {config::TVPlacement::kInput, true, false},
                                                                {config::TVPlacement::kInner, false, true}}) {
    c.model.tv.where = where;
    EXPECT_EQ(tv_options(c.model.tv)->block_input, input) << config::to_string(where);
    EXPECT_EQ(tv_options(c.model.tv)->block_inner, inner) << config::to_string(where);
  }
  EXPECT_EQ(tv_options(c.model.tv)->smooth.weight(), nn::TVWeight::kCharbonnier);
  c.model.tv.weight = config::TVWeight::kPeronaMalik;
  EXPECT_EQ(tv_options(c.model.tv)->smooth.weight(), nn::TVWeight::kPeronaMalik);

  EXPECT_EQ(model_options(c, 10, 3).transpose_impl, nn::TransposeImpl::kFlippedConv);
  c.model.transpose = config::Transpose::kConvTranspose;
  EXPECT_EQ(model_options(c, 10, 3).transpose_impl, nn::TransposeImpl::kConvTranspose);
  // auto: the ImageNet stem only for images larger than 64 pixels.
  data::DatasetInfo cifar{"cifar10", "", 3, 32, 32, 10, {0, 0, 0}, {1, 1, 1}};
  data::DatasetInfo folder{"image_folder", "", 3, 224, 224, 5, {0, 0, 0}, {1, 1, 1}};
  EXPECT_EQ(model_options(c, cifar).stem, models::Stem::kCifar);
  EXPECT_EQ(model_options(c, folder).stem, models::Stem::kImageNet);
  c.model.stem = config::Stem::kCifar;
  EXPECT_EQ(model_options(c, folder).stem, models::Stem::kCifar);
  c.model.stem = config::Stem::kImageNet;
  EXPECT_EQ(model_options(c, cifar).stem, models::Stem::kImageNet);
}

TEST(FromConfigTest, GraphModelAndEdgeWeights) {
  config::Config c;
  c.model.graph.channels = 12;
  c.model.graph.layers = 3;
  c.model.graph.init = config::GraphInit::kGlorot;
  c.model.graph.edge_activation = config::EdgeActivation::kRelu;
  c.model.graph.quantize_input = false;
  const auto g = graph_model_options(c, 100, 7);
  EXPECT_EQ(g.in_features, 100);
  EXPECT_EQ(g.num_classes, 7);
  EXPECT_EQ(g.channels, 12);
  EXPECT_EQ(g.layers, 3);
  EXPECT_EQ(g.init, models::GraphInit::kGlorot);
  EXPECT_EQ(g.activation, models::EdgeActivation::kReLU);
  EXPECT_FALSE(g.quantize_input);
  EXPECT_EQ(g.weight_quant.channels(), 0);  // graph models quantize weights per tensor

  c.data.edge_weights = config::EdgeWeights::kGcn;
  EXPECT_TRUE(edge_weighting(c.data).gcn);
  EXPECT_FALSE(edge_weighting(c.data).similarity);
  c.data.edge_weights = config::EdgeWeights::kSimilarity;
  EXPECT_FALSE(edge_weighting(c.data).gcn);
  EXPECT_TRUE(edge_weighting(c.data).similarity);
  c.data.edge_weights = config::EdgeWeights::kGcnSimilarity;
  EXPECT_TRUE(edge_weighting(c.data).gcn);
  EXPECT_TRUE(edge_weighting(c.data).similarity);
}

TEST(FromConfigTest, DataSplitsLoadersAndTransforms) {
  config::Config c;
  c.data.dataset = "fashion_mnist";
  c.data.root = "/data/fm";
  c.data.val_size = 7;
  c.data.split_seed = 3;
  c.data.limit_train = 100;
  c.data.limit_test = 9;
  const auto d = image_data_options(c.data);
  EXPECT_EQ(d.dataset, "fashion_mnist");
  EXPECT_EQ(d.root, "/data/fm");
  EXPECT_EQ(d.split.val_size, 7);
  EXPECT_EQ(d.split.split_seed, 3u);
  EXPECT_EQ(d.split.limit_train, 100);
  EXPECT_EQ(d.split.limit_test, 9);
  // The image-size limit of a config is the data layer's own default.
  EXPECT_EQ(c.data.max_image_pixels, data::ImageTransformOptions().max_pixels());
  EXPECT_EQ(image_transform_options(c.data, true).max_pixels(), config::kDefaultMaxImagePixels);
  c.data.augment = false;
  EXPECT_FALSE(image_transform_options(c.data, true).train());
  const auto info = data::dataset_info("fashion_mnist");
  const auto task = image_task_options(c, info, {1, 2});
  EXPECT_EQ(task.train_loader.batch_size(), c.data.batch_size);
  EXPECT_EQ(task.train_loader.shard().rank, 1);
  EXPECT_EQ(task.train_loader.shard().count, 2);
  EXPECT_EQ(task.eval_loader.batch_size(), c.data.eval_batch_size);
  EXPECT_EQ(task.seed, c.train.seed);
}

}  // namespace
}  // namespace pdeq::experiment
