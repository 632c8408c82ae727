// Compiled without LibTorch's include paths (its own object library): the PyPI wheels carry oneDNN 3.x
// headers there, while this source is written against, and linked with, Debian's oneDNN 2.x.
#include <pdeq/deploy/onednn_conv.h>

#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>

#ifdef PDEQ_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace pdeq::deploy {
namespace {

void check_spec(const Int8ConvSpec& s) {
  const auto fail = [](const std::string& what) { throw std::invalid_argument("int8 convolution: " + what); };
  if (s.in_channels < 1 || s.out_channels < 1 || s.kernel < 1 || s.stride < 1 || s.padding < 0 ||
      s.groups < 1) {
    fail("channels, kernel, stride and groups must be >= 1 and padding >= 0");
  }
  if (s.in_channels % s.groups != 0 || s.out_channels % s.groups != 0) {
    fail("in and out channels must be multiples of groups");
  }
  const auto weights = static_cast<size_t>(s.out_channels * (s.in_channels / s.groups) * s.kernel * s.kernel);
  if (s.weight.size() != weights) fail("weight must have out x in/groups x k x k entries");
  const auto channels = static_cast<size_t>(s.out_channels);
  if (s.multiplier.size() != channels || s.offset.size() != channels) {
    fail("multiplier and offset must have one entry per output channel");
  }
  for (const float m : s.multiplier) {
    if (!(m > 0.0f)) fail("multipliers must be > 0");
  }
  if (s.codes_output && (s.qmax < 1 || s.qmax > 255)) fail("qmax must be in [1, 255]");
}

}  // namespace

#ifdef PDEQ_WITH_ONEDNN

bool onednn_int8_available() { return true; }

namespace {

/// oihw, or goihw for grouped convolutions (the same row-major bytes as [O, I/G, k, k]).
dnnl::memory::dims weight_dims(const Int8ConvSpec& s) {
  if (s.groups == 1) return {s.out_channels, s.in_channels, s.kernel, s.kernel};
  return {s.groups, s.out_channels / s.groups, s.in_channels / s.groups, s.kernel, s.kernel};
}

}  // namespace

struct OnednnInt8Conv::Impl {
  struct Entry {
    dnnl::convolution_forward primitive;
    dnnl::memory weight;  // in the layout the primitive chose
    dnnl::memory::desc scratchpad;
  };
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::memory::desc weight_plain;
  std::vector<float> bias;  // oneDNN 2.x scales the bias with the accumulator: offset / multiplier
  std::mutex mutex;
  std::map<std::tuple<int64_t, int64_t, int64_t>, Entry> entries;
};

OnednnInt8Conv::OnednnInt8Conv(Int8ConvSpec spec) : spec_(std::move(spec)), impl_(std::make_unique<Impl>()) {
  check_spec(spec_);
  using dt = dnnl::memory::data_type;
  impl_->weight_plain = dnnl::memory::desc(
      weight_dims(spec_), dt::s8,
      spec_.groups == 1 ? dnnl::memory::format_tag::oihw : dnnl::memory::format_tag::goihw);
  impl_->bias.resize(spec_.offset.size());
  for (size_t c = 0; c < spec_.offset.size(); ++c) impl_->bias[c] = spec_.offset[c] / spec_.multiplier[c];
}

OnednnInt8Conv::~OnednnInt8Conv() = default;

void OnednnInt8Conv::run(int64_t batch, int64_t height, int64_t width, const uint8_t* src, void* dst) const {
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  const int64_t out_h = output_size(height), out_w = output_size(width);
  if (batch < 1 || out_h < 1 || out_w < 1) throw std::invalid_argument("int8 convolution: empty output");
  // A strided 1x1 convolution (a projection shortcut) runs at stride 1 on the pixels it reads, copied out
  // first: oneDNN 2.6.3's own strided 1x1 int8 path gave wrong sums at the first pixel of some threads'
  // shares of the batch with two threads (measured on AVX2).
  std::vector<uint8_t> subsampled;
  int64_t stride = spec_.stride;
  if (spec_.kernel == 1 && spec_.padding == 0 && stride > 1) {
    const auto c = static_cast<size_t>(spec_.in_channels);
    subsampled.resize(static_cast<size_t>(batch * out_h * out_w) * c);
    uint8_t* to = subsampled.data();
    for (int64_t n = 0; n < batch; ++n) {
      for (int64_t y = 0; y < out_h; ++y) {
        for (int64_t x = 0; x < out_w; ++x, to += c) {
          std::memcpy(to, src + static_cast<size_t>((n * height + y * stride) * width + x * stride) * c, c);
        }
      }
    }
    src = subsampled.data();
    height = out_h;
    width = out_w;
    stride = 1;
  }
  const dnnl::memory::desc src_md({batch, spec_.in_channels, height, width}, dt::u8, tag::nhwc);
  const dnnl::memory::desc dst_md({batch, spec_.out_channels, out_h, out_w},
                                  spec_.codes_output ? dt::u8 : dt::f32, tag::nhwc);
  const dnnl::memory::desc bias_md({spec_.out_channels}, dt::f32, tag::x);

  Impl::Entry* entry = nullptr;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    auto found = impl_->entries.find({batch, height, width});
    if (found == impl_->entries.end()) {
      try {
        const dnnl::memory::desc weight_any(weight_dims(spec_), dt::s8, tag::any);
        const dnnl::memory::dims strides{stride, stride}, padding{spec_.padding, spec_.padding};
        const dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference,
                                                   dnnl::algorithm::convolution_direct, src_md, weight_any,
                                                   bias_md, dst_md, strides, padding, padding);
        dnnl::primitive_attr attr;
        attr.set_output_scales(1 << 1, spec_.multiplier);
        dnnl::post_ops ops;
        if (spec_.accumulate_scale != 0.0f) ops.append_sum(spec_.accumulate_scale);
        if (spec_.codes_output) {
          ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, 0.0f, static_cast<float>(spec_.qmax));
        } else if (spec_.relu) {
          ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
        }
        attr.set_post_ops(ops);
        // A scratchpad per call instead of oneDNN's library-wide one (safe for concurrent callers).
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        const dnnl::convolution_forward::primitive_desc pd(desc, attr, impl_->engine);
        Impl::Entry made{dnnl::convolution_forward(pd), dnnl::memory(pd.weights_desc(), impl_->engine),
                         pd.scratchpad_desc()};
        // oneDNN only reads a reorder's source.
        dnnl::memory plain(impl_->weight_plain, impl_->engine, const_cast<int8_t*>(spec_.weight.data()));
        dnnl::stream stream(impl_->engine);
        dnnl::reorder(plain, made.weight).execute(stream, plain, made.weight);
        stream.wait();
        found = impl_->entries.emplace(std::make_tuple(batch, height, width), std::move(made)).first;
      } catch (const dnnl::error& e) {
        throw std::runtime_error(std::string("oneDNN refused the int8 convolution: ") + e.what());
      }
    }
    entry = &found->second;  // std::map nodes stay put; entries are never erased
  }
  dnnl::stream stream(impl_->engine);
  dnnl::memory src_mem(src_md, impl_->engine, const_cast<uint8_t*>(src));
  dnnl::memory dst_mem(dst_md, impl_->engine, dst);
  dnnl::memory bias_mem(bias_md, impl_->engine, impl_->bias.data());
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, src_mem},
      {DNNL_ARG_WEIGHTS, entry->weight},
      {DNNL_ARG_BIAS, bias_mem},
      {DNNL_ARG_DST, dst_mem},
      {DNNL_ARG_SCRATCHPAD, dnnl::memory(entry->scratchpad, impl_->engine)}};
  entry->primitive.execute(stream, args);
  stream.wait();
}

#else  // !PDEQ_WITH_ONEDNN

bool onednn_int8_available() { return false; }

struct OnednnInt8Conv::Impl {};

OnednnInt8Conv::OnednnInt8Conv(Int8ConvSpec spec) : spec_(std::move(spec)) {
  check_spec(spec_);
  throw std::runtime_error(
      "this pdeq was built without oneDNN (CMake option PDEQ_WITH_ONEDNN, Debian's libdnnl-dev): no int8 "
      "convolution with 32-bit accumulation");
}

OnednnInt8Conv::~OnednnInt8Conv() = default;

void OnednnInt8Conv::run(int64_t, int64_t, int64_t, const uint8_t*, void*) const {
  throw std::runtime_error("this pdeq was built without oneDNN");
}

#endif

}  // namespace pdeq::deploy
