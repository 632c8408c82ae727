#include <pdeq/models/block.h>

#include <cmath>

namespace pdeq::models {

BlockOptions::BlockOptions(int64_t in_channels, int64_t out_channels, int64_t stride)
    : in_channels_(in_channels), out_channels_(out_channels), stride_(stride) {}

void check_block_options(const BlockOptions& o) {
  TORCH_CHECK(o.in_channels() > 0, "in_channels must be positive, but got ", o.in_channels());
  TORCH_CHECK(o.out_channels() > 0, "out_channels must be positive, but got ", o.out_channels());
  TORCH_CHECK(o.stride() > 0, "stride must be positive, but got ", o.stride());
  TORCH_CHECK(o.dilation() > 0, "dilation must be positive, but got ", o.dilation());
  TORCH_CHECK(std::isfinite(o.step_size()), "step_size must be finite, but got ", o.step_size());
  TORCH_CHECK(o.act_quant().channels() == 0,
              "act_quant channels must be 0 (one alpha per activation tensor), but got ",
              o.act_quant().channels());
  if (o.transition() == Transition::kConcatPool) {
    TORCH_CHECK(o.out_channels() >= o.in_channels(),
                "out_channels must be >= in_channels with concatenation transitions, but got ",
                o.out_channels(), " < ", o.in_channels());
    TORCH_CHECK(o.stride() == 1 || o.stride() == 2,
                "stride must be 1 or 2 (2x2 average pooling) with concatenation transitions, but got ",
                o.stride());
  }
}

}  // namespace pdeq::models
