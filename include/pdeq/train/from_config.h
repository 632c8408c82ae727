// The only bridge from config structs to module/trainer options (STYLE.md 4: configs map to options in one
// layer).
#pragma once

#include <pdeq/config/config.h>
#include <pdeq/data/datasets.h>
#include <pdeq/data/image_folder.h>
#include <pdeq/data/loader.h>
#include <pdeq/data/planetoid.h>
#include <pdeq/models/graph_model.h>
#include <pdeq/models/registry.h>
#include <pdeq/quant/bit_schedule.h>
#include <pdeq/quant/fake_quantize.h>
#include <pdeq/train/trainer.h>

#include <optional>

namespace pdeq::train {

quant::FakeQuantizeOptions weight_quantizer_options(const config::QuantConfig& config);
quant::FakeQuantizeOptions activation_quantizer_options(const config::QuantConfig& config);
quant::BitScheduleOptions bit_schedule_options(const config::QuantConfig& config, int64_t target_bits);
/// model.tv -> where and how blocks smooth; nullopt when disabled.
std::optional<models::TVOptions> tv_options(const config::TVConfig& config);
models::ModelOptions model_options(const config::Config& config, const data::DatasetInfo& dataset);
models::ModelOptions model_options(const config::Config& config, int64_t num_classes, int64_t in_channels);
data::LoaderOptions train_loader_options(const config::DataConfig& config, const data::DatasetInfo& dataset);
data::LoaderOptions eval_loader_options(const config::DataConfig& config, const data::DatasetInfo& dataset);
/// Image folders: data.resize/image_size/random_resized_crop/workers/skip_bad_images; `train` and
/// data.augment select the training transforms (random crop + flip), else resize + centre crop.
data::ImageTransformOptions image_transform_options(const config::DataConfig& config, bool train);
TrainerOptions trainer_options(const config::Config& config);
/// Graph models: per-tensor quantizers; activation grid as configured (quant.midrise_activations).
models::GraphModelOptions graph_model_options(const config::Config& config, int64_t in_features,
                                              int64_t num_classes);
data::PlanetoidOptions planetoid_options(const config::DataConfig& config);
/// data.root, or the dataset's default location.
std::string planetoid_root(const config::DataConfig& config);

}  // namespace pdeq::train
