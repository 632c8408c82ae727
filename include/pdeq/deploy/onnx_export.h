// `pdeq export --format onnx`: an exported integer network as an ONNX model (QDQ form, opset 13).
#pragma once

#include <pdeq/deploy/int_graph.h>

#include <filesystem>
#include <string>

namespace pdeq::deploy {

/// The ONNX opset the export targets: the first with per-axis DequantizeLinear (per-channel weight scales).
constexpr int64_t kOnnxOpset = 13;

/// Whether this build can write ONNX (libonnx-dev was found when pdeq was configured, PDEQ_WITH_ONNX).
/// Without it the functions below throw std::runtime_error saying so.
bool onnx_export_built();

/// The graph as a serialised ONNX ModelProto in QDQ form, computing what IntegerModel computes in
/// ResidualMode::kExact (the fake-quant network):
///   stem                  Conv -> Relu [-> MaxPool 3x3/2, pad 1]                    (float)
///   codes of a quantizer  [Clip(0, s (qmax - zp)) when qmax < 255 ->] QuantizeLinear -> DequantizeLinear
///                         (uint8, so 4-bit codes are uint8 values <= 15)
///   int8 convolution      DequantizeLinear(int8 codes, per-output-channel scales, axis 0) -> Conv [-> Relu]
///                         -> codes as above; a convolution feeding a residual add stays float (exact mode)
///   residual add          Add [-> Relu] -> codes as above (the last block's add: float)
///   head                  GlobalAveragePool -> Flatten -> Gemm(transB)                (float)
/// Input "image" float [batch, C, H, W] (batch symbolic; C, H, W from meta "input_shape" when present),
/// output "logits" [batch, classes]. Nodes are named "<op name>/<role>" (e.g. "layer1.0.act_mid/conv"); the
/// meta entries become metadata_props (values as JSON text). The model is checked (check_onnx) before it is
/// returned.
std::string to_onnx(const IntGraph& graph);

/// Writes to_onnx(graph) to `path` atomically (temporary file + rename).
void save_onnx(const IntGraph& graph, const std::filesystem::path& path);

/// Parses `bytes` as an ONNX model and runs onnx's checker and its strict shape and type inference; throws
/// std::runtime_error "<name>: <what>" naming the failing node (and so the pdeq op) when one is found.
void check_onnx(const std::string& bytes, const std::string& name);

}  // namespace pdeq::deploy
