// Config -> Options: every conversion from the config structs to the options of the layers below (quantizers,
// models, data, loaders, tasks, optimizer, trainer), in one place. The layers below never see a Config.
#pragma once

#include <pdeq/config/config.h>
#include <pdeq/data/datasets.h>
#include <pdeq/data/image_folder.h>
#include <pdeq/data/loader.h>
#include <pdeq/data/planetoid.h>
#include <pdeq/data/segmentation.h>
#include <pdeq/models/graph_model.h>
#include <pdeq/models/registry.h>
#include <pdeq/quant/bit_schedule.h>
#include <pdeq/quant/fake_quantize.h>
#include <pdeq/train/compute_mode.h>
#include <pdeq/train/distillation.h>
#include <pdeq/train/image_classification.h>
#include <pdeq/train/node_classification.h>
#include <pdeq/train/optimizer.h>
#include <pdeq/train/segmentation.h>
#include <pdeq/train/trainer.h>

#include <optional>

namespace pdeq::experiment {

quant::FakeQuantizeOptions weight_quantizer_options(const config::QuantConfig& config);
quant::FakeQuantizeOptions activation_quantizer_options(const config::QuantConfig& config);
quant::BitScheduleOptions bit_schedule_options(const config::QuantConfig& config, int64_t target_bits);
/// model.tv -> where and how blocks smooth; nullopt when disabled.
std::optional<models::TVOptions> tv_options(const config::TVConfig& config);
models::ModelOptions model_options(const config::Config& config, const data::DatasetInfo& dataset);
/// Without a dataset (`pdeq params`): model.stem auto means the CIFAR stem.
models::ModelOptions model_options(const config::Config& config, int64_t num_classes, int64_t in_channels);
/// Graph models: per-tensor quantizers; activation grid as configured (quant.midrise_activations).
models::GraphModelOptions graph_model_options(const config::Config& config, int64_t in_features,
                                              int64_t num_classes);

/// The image model model.name for `dataset`: a segmentation model (make_segmentation_model) for the
/// segmentation datasets, a classifier (make_model) otherwise.
models::Classifier make_image_model(const config::Config& config, const data::DatasetInfo& dataset);
/// Whether data.dataset is a segmentation dataset (camvid, cityscapes).
bool is_segmentation_dataset(const std::string& dataset);
/// camvid | cityscapes at data.root, or by default ../shared/data/camvid (../shared/data/cityscapes);
/// with PDEQ_DATA_DIR set, $PDEQ_DATA_DIR/camvid (cityscapes) instead.
data::SegmentationInfo segmentation_info(const config::DataConfig& config);
/// data.resize, image_size (training crop), scale_min/max, augment (scale and flip), workers,
/// skip_bad_images, max_image_pixels; `train` selects the training transforms.
data::SegmentationTransformOptions segmentation_transform_options(const config::DataConfig& config,
                                                                  bool train);
/// The segmentation task's options: image_task_options' loaders and compute mode, the transforms and
/// `class_weights` (computed by the caller from data.class_weights).
train::SegmentationOptions segmentation_task_options(const config::Config& config,
                                                     const data::DatasetInfo& dataset,
                                                     std::vector<double> class_weights,
                                                     data::Shard shard = {});
/// The dataset's shape and statistics: the table's entry, or for image folders the classes under data.root
/// (segmentation datasets: the classes, and the training crop data.image_size as height and width).
data::DatasetInfo dataset_info(const config::DataConfig& config);
data::Normalization normalization(const config::DataConfig& config);
data::SplitOptions split_options(const config::DataConfig& config);
data::ImageDataOptions image_data_options(const config::DataConfig& config);
data::LoaderOptions train_loader_options(const config::DataConfig& config, const data::DatasetInfo& dataset);
data::LoaderOptions eval_loader_options(const config::DataConfig& config, const data::DatasetInfo& dataset);
/// Image folders: data.resize/image_size/random_resized_crop/workers/skip_bad_images; `train` and
/// data.augment select the training transforms (random crop + flip), else resize + centre crop.
data::ImageTransformOptions image_transform_options(const config::DataConfig& config, bool train);
data::PlanetoidOptions planetoid_options(const config::DataConfig& config);
/// data.root, or the Planetoid graphs' default location.
std::string planetoid_root(const config::DataConfig& config);
train::EdgeWeighting edge_weighting(const config::DataConfig& config);

/// train.memory_format and train.precision.
train::ComputeMode compute_mode(const config::TrainConfig& config);
/// The image task's loaders (with this rank's `shard`), transforms, seed, compute mode and loss.
train::ImageClassificationOptions image_task_options(const config::Config& config,
                                                     const data::DatasetInfo& dataset,
                                                     data::Shard shard = {});
train::OptimizerOptions optimizer_options(const config::TrainConfig& config);
train::TrainerOptions trainer_options(const config::Config& config);
/// train.distillation (high_bits, activation_loss).
train::DistillationOptions distillation_options(const config::DistillationConfig& config);

}  // namespace pdeq::experiment
