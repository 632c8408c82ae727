// `pdeq export`: a trained quantization-aware ResNet, StableNet or MobileNetV2 as an integer network.
#pragma once

#include <pdeq/deploy/int_graph.h>
#include <pdeq/models/classifier.h>
#include <pdeq/models/mobilenetv2.h>
#include <pdeq/models/resnet.h>

#include <torch/arg.h>
#include <torch/types.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace pdeq::deploy {

struct ExportOptions {
  /// best | last checkpoint of the run.
  TORCH_ARG(std::string, checkpoint) = "best";
  /// Training batches (no augmentation) whose residual-branch ranges set the scales of the int8 tensors that
  /// the trained network keeps in float (a block's branch and projection outputs before the add).
  TORCH_ARG(int64_t, calibration_batches) = 8;
  /// Each calibrated range is widened by this fraction of its width on both sides (values beyond it clip).
  TORCH_ARG(double, range_margin) = 0.05;
  /// pdeq (our format, see int_format.h) | onnx (QDQ, see onnx_export.h; refused with a message when pdeq was
  /// built without libonnx-dev).
  TORCH_ARG(std::string, format) = "pdeq";
};

/// The integer graph of a trained ResNet (resnet20..110, resnet18/34 with ordinary or the paper's symmetric
/// blocks; resnet50/101/152 with bottlenecks) or StableNet in eval mode. Per block, with s the scale of the
/// fake quantizer each output feeds:
///   H  = ReLU(BN1(K1 x_q))            -> codes at act_mid's scale (BN1 folded into K1's channel scales;
///                                        bottlenecks: two such convolutions, act_mid1 and act_mid2)
///   T  = -h BN2(K2 h_q)  (K2 = K^T)    -> codes at a calibrated scale (zero point inside the range)
///   S  = x_q, or BN(P x_q)             -> codes (identity: the input's own)
///   y  = ReLU(S + T)                   -> codes at the next block's act_in scale; float after the last block
/// A StableNet transition (a block that widens or strides) keeps y in float, concatenates x_q (dequantised)
/// and pools 2x2 in float; the next act_in quantizes the result. The float stem (conv + BN + ReLU [+
/// max-pool]) and the pooled linear classifier stay float. Refuses (c10::ValueError naming the layer) what
/// it cannot reproduce: transitions that widen by part of the input, per-channel weights in symmetric
/// blocks, mid-rise activations, > 8 bits, full-precision layers. TV smoothing layers export as
/// float stencils between integer sections. `calibration`: normalised float image batches.
IntGraph export_resnet(models::ResNetImpl& model, const std::vector<torch::Tensor>& calibration,
                       const ExportOptions& options = {});

/// The integer graph of a trained MobileNetV2 (ordinary or symmetric) in eval mode. Ordinary inverted
/// residual blocks, with s the scale of the fake quantizer each output feeds:
///   u = ReLU(BN1(K1 x_q))  -> codes at act_mid's scale (1x1 expansion)
///   v = ReLU(BN2(K2 u_q))  -> codes at act_out's scale (3x3 depthwise, int8 with groups = channels)
///   z = BN3(K3 v_q)        -> with the residual: T = -h z at a calibrated scale, y = x_q + T requantised to
///                             the next act_in (whose clip at 0 the add's ReLU stands for); without it,
///                             z straight to the next act_in's codes (one int8 convolution)
/// Symmetric blocks: K1 x_q summed exactly (int8, float output), K2 (depthwise, no padding) with BN1 and ReLU
/// in float, act_mid's codes; K2^T on those codes summed exactly, K1^T with -h BN2 in float, the add
/// requantised to the next act_in. The stem, the 1x1 head conv (+ BN + ReLU) and the classifier stay float.
/// Refuses (c10::ValueError naming the layer) mid-rise activations, > 8 bits and full-precision
/// layers.
IntGraph export_mobilenetv2(models::MobileNetV2Impl& model, const std::vector<torch::Tensor>& calibration,
                            const ExportOptions& options = {});

/// Dispatches on the model's family (export_resnet, export_mobilenetv2); refuses other families (DeepLabV3)
/// naming them.
IntGraph export_classifier(models::ClassifierImpl& model, const std::vector<torch::Tensor>& calibration,
                           const ExportOptions& options = {});

/// Loads the run's config and checkpoint, exports, writes `out` in `options.format()` and returns a report
/// (format, ops, int8 and float layers, bit widths, normalisation, calibration images, file bytes); the
/// report, with the run's config, is also the file's meta (ONNX: its metadata_props).
nlohmann::json export_run(const std::filesystem::path& run_dir, const std::filesystem::path& out,
                          const ExportOptions& options = {});

}  // namespace pdeq::deploy
