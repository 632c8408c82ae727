// Typed experiment configuration: JSON files -> plain per-section structs, validated under their JSON paths.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <pdeq/config/choices.h>

#include <nlohmann/json.hpp>

namespace pdeq::config {

/// A configuration problem, always phrased "<file>: <json.path>: expected <rule>, got <value>".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// `model.tv`: edge-aware TV smoothing after the activations, before their quantizers (pdeq::nn::TVSmooth).
struct TVConfig {
  bool enabled = false;
  int64_t iters = 1;        ///< explicit steps per layer
  double gamma_init = 0.2;  ///< initial gamma of every channel (step ~ gamma^2, bounded for stability)
  double eps = 0.1;         ///< Charbonnier epsilon / Perona-Malik K^2
  TVWeight weight = TVWeight::kCharbonnier;  ///< charbonnier | perona_malik
  TVPlacement where = TVPlacement::kAll;     ///< all | input (block inputs) | inner (inside blocks)
};

/// The graph models' keys of the `model` section (pde_gcn | pde_gcn_nonsym | gcn).
struct GraphModelConfig {
  int64_t channels = 64;       ///< PDE-GCN width, GCN hidden size
  int64_t layers = 16;         ///< PDE-GCN layers, GCN graph convolutions
  double dropout = 0.6;        ///< dropout inside the network
  double input_dropout = 0.6;  ///< dropout on the input features
  // PDE-GCN only (see pdeq/models/pde_gcn.h):
  bool bias = true;                                        ///< `graph_bias`: opening and closing linear maps
  GraphInit init = GraphInit::kLinear;                     ///< `graph_init`: linear (nn::Linear's) | glorot
  EdgeActivation edge_activation = EdgeActivation::kTanh;  ///< s in x - h G^T K^T s(K G x): tanh | relu
  bool dropout_on_edges = false;                           ///< the layers' dropout on G x instead of on x
  bool quantize_input = true;                              ///< activation quantizer on each layer's input x
  bool quantize_gradient = false;                          ///< ... on the edge gradient G x (before K)
  bool quantize_edges = true;                              ///< ... on e = s(K G x)
};

/// `model` section.
struct ModelConfig {
  std::string name = "resnet20";  ///< registry name, see pdeq::models::model_names(input)
  double step_size = 1.0;         ///< h in x <- shortcut - h*branch (1 for ordinary blocks)
  /// Symmetric blocks x <- x - h K^T s(K x) (resnet*, stablenet*, mobilenetv2); the paper uses h = 0.1 with
  /// them.
  bool stable = false;
  Transpose transpose =
      Transpose::kConv;  ///< how symmetric blocks apply K^T: conv (flipped kernel) | conv_transpose
  /// ResNet stem: cifar (3x3 conv), imagenet (7x7 stride-2 conv + 3x3 stride-2 max-pool, torchvision's), or
  /// auto: imagenet when the input images are larger than 64 pixels (image folders), else cifar.
  Stem stem = Stem::kAuto;
  TVConfig tv;
  /// Graph models only (pde_gcn | pde_gcn_nonsym | gcn); files keep these keys directly under `model`.
  GraphModelConfig graph;
};

/// PIL's Image.MAX_IMAGE_PIXELS (a quarter GiB of 24-bit pixels): image files declaring more are refused
/// before decoding (data.max_image_pixels).
inline constexpr int64_t kDefaultMaxImagePixels = 89'478'485;  // = data::ImageTransformOptions().max_pixels()

/// `data` section.
struct DataConfig {
  /// cifar10 | cifar100 | fashion_mnist | mnist | image_folder | camvid | cityscapes | cora | citeseer |
  /// pubmed
  std::string dataset = "cifar10";
  std::string root;         ///< empty: the dataset's documented default location (image_folder: required)
  int64_t val_size = 5000;  ///< held out from the training files, deterministic by split_seed
  uint64_t split_seed = 0;
  int64_t limit_train = 0;  ///< 0: all; otherwise the first N after the split
  int64_t limit_val = 0;
  int64_t limit_test = 0;
  bool augment = true;  ///< random crop (4-pixel zero padding) + horizontal flip
  int64_t batch_size = 128;
  int64_t eval_batch_size = 500;
  int64_t prefetch = 2;            ///< batches prepared ahead on a background thread (0: none)
  bool normalize_features = true;  ///< graphs: divide every feature row by its sum (as GCN)
  /// graphs: weights of the PDE-GCN's gradient G: "gcn" (1/sqrt(d_u d_v)), "similarity" (exp(-2 D_uv / std
  /// D), D the squared feature distance, as the authors' quantized driver) or "gcn_similarity" (their
  /// product).
  EdgeWeights edge_weights = EdgeWeights::kGcn;
  /// Image datasets: reference = the reference implementation's constants (CIFAR-10 std 0.2023, 0.1994,
  /// 0.2010), dataset = the training set's measured statistics (CIFAR-10 std 0.2470, 0.2435, 0.2616). They
  /// differ for CIFAR-10 only.
  Normalization normalization = Normalization::kReference;
  // image_folder only (streamed from disk, see pdeq/data/image_folder.h):
  int64_t workers = 0;       ///< decoding threads per loader (0: one per core)
  int64_t resize = 256;      ///< shorter side after resizing
  int64_t image_size = 224;  ///< square crop (train: random, eval: centre)
  bool random_resized_crop =
      false;                     ///< train: torchvision's RandomResizedCrop instead of Resize + RandomCrop
  bool skip_bad_images = false;  ///< unreadable images: logged, left out and counted instead of an error
  int64_t max_image_pixels = kDefaultMaxImagePixels;  ///< larger declared image sizes are unreadable
  // Segmentation folders (camvid | cityscapes) only (see pdeq/data/segmentation.h); they also read
  // workers, resize (shorter side of the frames, also the evaluation size), image_size (the square training
  // crop), augment (random scale and flip), skip_bad_images and max_image_pixels:
  double scale_min = 0.5;  ///< training: random scale of the resized frame, from scale_min ...
  double scale_max = 2.0;  ///< ... to scale_max
  ClassWeights class_weights = ClassWeights::kNone;  ///< none | median_frequency (from the training labels)
};

/// `quant.schedule`: gradual lowering of the bit width (paper: 16 bits, -1 every 10 epochs, down to target).
struct BitScheduleConfig {
  bool enabled = false;
  int64_t start_bits = 16;
  int64_t step = 1;
  int64_t period_epochs = 10;
  /// reference: lowered after training epochs P, 2P, ... (0-based; the reference's `epoch > 0 and epoch %
  /// 10 == 0` after the epoch), so the start width runs P + 1 epochs; even: every width runs P epochs.
  ScheduleTiming timing = ScheduleTiming::kReference;
};

/// `quant` section.
struct QuantConfig {
  int64_t weight_bits = 32;  ///< >= 32: full precision
  int64_t act_bits = 32;
  double weight_alpha_init = 3.0;
  double act_alpha_init = 6.0;
  bool weight_standardize = true;   ///< (w-mean)/std per tensor before quantizing, as the reference
  bool per_channel = false;         ///< one alpha per output channel for weights
  bool signed_activations = false;  ///< signed activation quantizer (tanh nets)
  /// Signed mid-rise activation grid (2^b levels on [-a, a], no zero; the graph networks' quantizer).
  bool midrise_activations = false;
  BitScheduleConfig schedule;
};

/// `train.scale_group` / `train.layer_group`: parameters trained with their own learning rate and decay.
struct ParamGroupConfig {
  bool enabled = false;
  std::string prefix;  ///< layer_group: parameters whose qualified name starts with this
  double lr = 0.0;     ///< 0: train.lr; scaled by the schedule like every group
  double weight_decay = 0.0;
};

/// `train.distillation`: the reference's second training mode (stable_exp.py, train_distillation). A
/// high-precision network (activations at high_bits) and the run's low-precision one (activations at
/// quant.act_bits) share every weight, BN scale and weight quantizer and keep their own activation scales and
/// BN statistics; the loss is CE(high) + CE(low) + activation_loss * D(high, low) (docs/cli.md).
struct DistillationConfig {
  bool enabled = false;
  int64_t high_bits = 32;         ///< the high-precision network's activation bits (> quant.act_bits)
  double activation_loss = 1e-5;  ///< coefficient c of the activation loss
};

/// `train` section.
struct TrainConfig {
  int64_t epochs = 200;
  Optimizer optimizer = Optimizer::kSgd;  ///< sgd | adam | adamw
  double lr = 0.1;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 1e-4;
  bool decay_scales_norms_biases = true;  ///< false: no weight decay on alpha, BN parameters and biases
  LrSchedule lr_schedule = LrSchedule::kCosine;  ///< cosine | constant
  /// epoch: the rate moves once per epoch (the reference steps torch's CosineAnnealingLR per epoch); step:
  /// every optimisation step.
  LrStep lr_step = LrStep::kEpoch;
  double warmup_epochs = 0;  ///< linear warm-up length
  double min_lr = 0.0;       ///< cosine floor
  double label_smoothing = 0.0;
  uint64_t seed = 0;
  int64_t threads = 0;  ///< 0: all cores
  /// auto (a CUDA GPU when LibTorch has CUDA and one is present, else the CPU) | cpu | cuda | cuda:N
  std::string device = "auto";
  /// Layout of the image models' weights and batches: channels_last (NHWC in memory, oneDNN's native layout;
  /// 1.25-1.9x faster W4A4 training on the CIFAR families; the Fashion-MNIST config pins contiguous:
  /// docs/performance.md) | contiguous (NCHW). Graph models ignore it.
  MemoryFormat memory_format = MemoryFormat::kChannelsLast;
  /// fp32 | bf16: autocast convolutions and matmuls to bfloat16 (CPU autocast); quantizers, clipping
  /// scales, BatchNorm statistics, the loss and the optimizer state stay fp32 (docs/performance.md).
  Precision precision = Precision::kFp32;
  int64_t log_every = 50;  ///< steps between log lines when stdout is not a terminal
  double beta1 = 0.9;      ///< adam / adamw
  double beta2 = 0.999;
  /// Quantizer clipping scales (all FakeQuantize alphas) in their own group.
  ParamGroupConfig scale_group;
  /// Parameters whose name starts with layer_group.prefix (e.g. "layers." for PDE-GCN's K) in their own
  /// group (after the scales).
  ParamGroupConfig layer_group;
  int64_t eval_every = 1;        ///< validation (and best-checkpoint selection) every N epochs and at the end
  int64_t checkpoint_every = 1;  ///< last checkpoint (and metrics flush) every N epochs and at the end
  int64_t metrics_every = 1;     ///< a metrics row every N epochs, every evaluated epoch and the last
  int64_t plot_every = 1;        ///< train_curves.png every N epochs and at the end
  bool tensorboard = true;       ///< TensorBoard event files in <run>/tensorboard/
  int64_t patience = 0;          ///< > 0: stop when validation has not improved for this many epochs
  int64_t seeds = 1;             ///< > 1: N runs with seeds seed, seed+1, ... in <out>/seed<i>; mean and std
  DistillationConfig distillation;
};

/// A whole experiment.
struct Config {
  ModelConfig model;
  DataConfig data;
  QuantConfig quant;
  TrainConfig train;
  std::string source = "<config>";  ///< file the config came from, used in error messages
  /// The `--set key=value` assignments applied on top of `source`, in order (see source_of).
  std::vector<std::string> overrides;
};

/// Whether `key` is `section` itself or a key under it ("model.tv.where" is within "model.tv", not within
/// "model.t").
bool key_within(const std::string& key, const std::string& section);

/// What set `key` ("model.tv.where") for error messages: the last `--set` assignment of that key or of a
/// section above it ("--set model.tv.where=input"), else config.source.
std::string source_of(const Config& config, const std::string& key);

/// Reads `path`, applies `overrides` ("a.b=value", value parsed as JSON, else taken as a string) and
/// validates. The file is validated on its own first (errors name `path`); errors the overrides introduce
/// name "--set".
///
/// Example:
///   auto cfg = pdeq::config::load_config("configs/cifar10_resnet20_w4a4.json", {"train.epochs=3"});
///   // "x.json: train.epochs: expected an integer >= 1, got -3"
///   // "x.json: model.nmae: unknown key; did you mean 'name'? (allowed: name, step_size, ...)"
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

/// The defaults with `overrides` applied ("a.b=value", as --set), for commands without a config file
/// (`pdeq params`); errors name "--set".
Config config_from_overrides(const std::vector<std::string>& overrides);

/// Validates a JSON document; `source` names it in errors. Unknown keys, wrong types, out-of-range and
/// unknown enum values throw ConfigError (unknown keys suggest the nearest valid one).
Config parse_config(const nlohmann::json& document, const std::string& source);

/// Applies one "a.b.c=value" override to a JSON document, creating missing sections. The key must name a
/// known field or section (else ConfigError from `source`, with a suggestion); the value is checked by
/// parse_config afterwards.
void apply_override(nlohmann::json& document, const std::string& assignment, const std::string& source);

/// Parses a JSON file strictly, as load_config does: cannot open, syntax errors (line and column) and
/// duplicate keys throw ConfigError naming `path`. For other JSON inputs of the same family (sweep files).
nlohmann::json read_json_file(const std::string& path);

/// The fully resolved config (every field, defaults included); parse_config(to_json(c)) == c.
nlohmann::json to_json(const Config& config);

/// Every key of a config with its default value and what a file may set it to, as a Markdown document
/// (docs/configs.md is this text; `pdeq schema` prints it).
std::string reference_markdown();

/// Same settings in every section (`source` and `overrides` are not compared).
bool operator==(const Config& a, const Config& b);
bool operator!=(const Config& a, const Config& b);

}  // namespace pdeq::config
