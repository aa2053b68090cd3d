#include "model/student.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "model/json_int.h"

namespace kd::model {
namespace {

namespace nn = torch::nn;

nn::Sequential ConvBnRelu(int in, int out, int kernel, int stride, int groups = 1, bool relu = true) {
  nn::Sequential s(
      nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).groups(groups).bias(false)),
      nn::BatchNorm2d(out));
  if (relu) s->push_back(nn::ReLU(nn::ReLUOptions(/*inplace=*/true)));
  return s;
}

// Depthwise 3x3 (stride s) + pointwise 1x1, each with BN; ReLU after each unless `last_relu` is false.
nn::Sequential DwSeparable(int in, int out, int stride, bool last_relu = true) {
  nn::Sequential s;
  s->extend(*ConvBnRelu(in, in, 3, stride, /*groups=*/in));
  s->extend(*ConvBnRelu(in, out, 1, 1, 1, last_relu));
  return s;
}

nn::Sequential Chain(nn::Sequential a, const nn::Sequential& b) {
  a->extend(*b);
  return a;
}

}  // namespace

Status StudentOptions::Validate() const {
  if (width < 8 || width > 64) return Status::InvalidArgument("student width must be in 8..64");
  if (head_channels < 8 || head_channels > 256)
    return Status::InvalidArgument("student head_channels must be in 8..256");
  if (labels.empty()) return Status::InvalidArgument("student needs at least one class");
  // Also bounds the head's size for an architecture read from a file (a .kdw's metadata).
  if (labels.size() > 80) return Status::InvalidArgument("student has more than 80 classes");
  for (int l : labels) {
    if (l < 0 || l >= 80)
      return Status::InvalidArgument("student label " + std::to_string(l) + " is not a COCO-80 index");
  }
  if (input_width % 32 != 0 || input_height % 32 != 0 || input_width <= 0 || input_height <= 0) {
    return Status::InvalidArgument("student input size must be positive multiples of 32");
  }
  if (one_to_one_stride != 4 && one_to_one_stride != 8) {
    return Status::InvalidArgument("student one_to_one_stride must be 4 or 8");
  }
  return Status::Ok();
}

std::string StudentOptions::ArchJson() const {
  nlohmann::json j = {{"family", "kd-student-v1"},      {"width", width},
                      {"head_channels", head_channels}, {"labels", labels},
                      {"input_width", input_width},     {"input_height", input_height},
                      {"one_to_one", one_to_one}};
  // Written only when it is not 4, so every architecture from before the key hashes as it did.
  if (one_to_one_stride != 4) j["one_to_one_stride"] = one_to_one_stride;
  return j.dump();  // keys sorted: canonical
}

Result<StudentOptions> StudentOptions::FromArchJson(const std::string& text) {
  StudentOptions o;
  try {
    auto j = nlohmann::json::parse(text);
    if (j.at("family").get<std::string>() != "kd-student-v1") {
      return Status::InvalidArgument("unknown student family '" + j.at("family").get<std::string>() + "'");
    }
    o.width = internal::JsonInt<int>(j.at("width"));
    o.head_channels = internal::JsonInt<int>(j.at("head_channels"));
    o.labels = internal::JsonInts<int>(j.at("labels"));
    o.input_width = internal::JsonInt<int>(j.at("input_width"));
    o.input_height = internal::JsonInt<int>(j.at("input_height"));
    o.one_to_one = j.at("one_to_one").get<bool>();
    if (j.contains("one_to_one_stride")) o.one_to_one_stride = internal::JsonInt<int>(j.at("one_to_one_stride"));
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("bad student architecture: ") + e.what());
  }
  KD_RETURN_IF_ERROR(o.Validate());
  return o;
}

StudentImpl::StudentImpl(StudentOptions options) : options_(std::move(options)) {
  KD_CHECK_MSG(options_.Validate().ok(), options_.Validate().ToString());
  const int w = options_.width, c = options_.head_channels, k = options_.num_classes();
  // Strides: stem /2, stage2 /4, stage3 /8, stage4 /16, stage5 /32.
  stem_ = register_module("stem", ConvBnRelu(3, w, 3, 2));
  stage2_ = register_module("stage2", DwSeparable(w, w * 3 / 2, 2));
  stage3_ = register_module("stage3", Chain(DwSeparable(w * 3 / 2, w * 2, 2), DwSeparable(w * 2, w * 2, 1)));
  stage4_ = register_module("stage4", Chain(DwSeparable(w * 2, w * 4, 2), DwSeparable(w * 4, w * 4, 1)));
  stage5_ = register_module("stage5", Chain(DwSeparable(w * 4, w * 6, 2), DwSeparable(w * 6, w * 6, 1)));
  lat2_ = register_module("lat2", nn::Conv2d(nn::Conv2dOptions(w * 3 / 2, c, 1)));
  lat3_ = register_module("lat3", nn::Conv2d(nn::Conv2dOptions(w * 2, c, 1)));
  lat4_ = register_module("lat4", nn::Conv2d(nn::Conv2dOptions(w * 4, c, 1)));
  lat5_ = register_module("lat5", nn::Conv2d(nn::Conv2dOptions(w * 6, c, 1)));
  tower_ = register_module("tower", DwSeparable(c, c, 1, /*last_relu=*/false));
  cls_ = register_module("cls", nn::Conv2d(nn::Conv2dOptions(c, k, 1)));
  box_ = register_module("box", nn::Conv2d(nn::Conv2dOptions(c, 4, 1)));
  // Focal-loss prior: background probability 0.99 at start keeps early losses finite.
  torch::NoGradGuard no_grad;
  cls_->bias.fill_(-4.6f);
  box_->bias.fill_(0.5f);
  if (options_.one_to_one) {
    o2o_tower_ = register_module("o2o_tower", DwSeparable(c, c, 1));
    cls_o2o_ = register_module("cls_o2o", nn::Conv2d(nn::Conv2dOptions(c, k, 1)));
    box_o2o_ = register_module("box_o2o", nn::Conv2d(nn::Conv2dOptions(c, 4, 1)));
    cls_o2o_->bias.fill_(-4.6f);
    box_o2o_->bias.fill_(0.5f);
  }
}

StudentOutput StudentImpl::forward(const torch::Tensor& images) {
  auto x = (images.contiguous(at::MemoryFormat::ChannelsLast) - kPixelMean) * (1.f / kPixelStd);
  auto c2 = stage2_->forward(stem_->forward(x));
  auto c3 = stage3_->forward(c2);
  auto c4 = stage4_->forward(c3);
  auto c5 = stage5_->forward(c4);
  namespace F = torch::nn::functional;
  auto up = [](const torch::Tensor& t, const torch::Tensor& like) {
    return F::interpolate(
        t, F::InterpolateFuncOptions().size(std::vector<int64_t>{like.size(2), like.size(3)}).mode(torch::kNearest));
  };
  auto p5 = lat5_->forward(c5);
  auto p4 = lat4_->forward(c4) + up(p5, c4);
  auto p3 = lat3_->forward(c3) + up(p4, c3);
  StudentOutput out;
  out.neck = lat2_->forward(c2) + up(p3, c2);
  auto p2 = torch::relu(out.neck);
  out.tap = tower_->forward(p2);
  auto feat = torch::relu(out.tap);
  out.cls = cls_->forward(feat);
  out.box = F::softplus(box_->forward(feat)) * StudentImpl::kBoxScale;
  if (options_.one_to_one) {
    auto f2 =
        o2o_tower_->forward(options_.one_to_one_stride == 8 ? F::avg_pool2d(feat, F::AvgPool2dFuncOptions(2)) : feat);
    out.cls_o2o = cls_o2o_->forward(f2);
    out.box_o2o = F::softplus(box_o2o_->forward(f2)) * StudentImpl::kBoxScale;
  }
  return out;
}

FusedStudent::Chain FusedStudent::Fuse(const torch::nn::Sequential& seq) {
  torch::NoGradGuard no_grad;
  Chain chain;
  for (const auto& child : seq->children()) {
    if (auto* conv = child->as<nn::Conv2d>()) {
      Conv c;
      const auto& o = conv->options;
      c.weight = conv->weight.detach().clone();
      c.bias = conv->bias.defined() ? conv->bias.detach().clone() : torch::zeros({c.weight.size(0)});
      c.stride = (*o.stride())[0];
      c.padding = c.weight.size(2) / 2;  // every student conv is "same" padded (kernel / 2)
      c.groups = o.groups();
      chain.push_back(c);
    } else if (auto* bn = child->as<nn::BatchNorm2d>()) {
      KD_CHECK_MSG(!chain.empty(), "BatchNorm without a preceding convolution");
      Conv& c = chain.back();
      // y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta, folded into the conv.
      auto scale = bn->weight.detach() / (bn->running_var.detach() + bn->options.eps()).sqrt();
      c.weight = c.weight * scale.view({-1, 1, 1, 1});
      c.bias = (c.bias - bn->running_mean.detach()) * scale + bn->bias.detach();
    } else if (child->as<nn::ReLU>()) {
      KD_CHECK(!chain.empty());
      chain.back().relu = true;
    } else {
      KD_CHECK_MSG(false, "FusedStudent: unexpected layer " + child->name());
    }
  }
  for (auto& c : chain) c.weight = c.weight.contiguous(at::MemoryFormat::ChannelsLast);
  return chain;
}

torch::Tensor FusedStudent::Run(const Chain& chain, torch::Tensor x) {
  for (const Conv& c : chain) {
    x = torch::conv2d(x, c.weight, c.bias, c.stride, c.padding, 1, c.groups);
    if (c.relu) x = torch::relu_(x);
  }
  return x;
}

FusedStudent::FusedStudent(const StudentImpl& s) : options_(s.options_) {
  KD_CHECK_MSG(!s.is_training(), "FusedStudent needs a student in eval mode (BN running statistics)");
  auto single = [](const nn::Conv2d& conv) {
    Chain ch = Fuse(nn::Sequential(conv));
    return ch[0];
  };
  stem_ = Fuse(s.stem_);
  stage2_ = Fuse(s.stage2_);
  stage3_ = Fuse(s.stage3_);
  stage4_ = Fuse(s.stage4_);
  stage5_ = Fuse(s.stage5_);
  tower_ = Fuse(s.tower_);
  lat2_ = single(s.lat2_);
  lat3_ = single(s.lat3_);
  lat4_ = single(s.lat4_);
  lat5_ = single(s.lat5_);
  cls_ = single(s.cls_);
  box_ = single(s.box_);
  if (options_.one_to_one) {
    o2o_tower_ = Fuse(s.o2o_tower_);
    cls_o2o_ = single(s.cls_o2o_);
    box_o2o_ = single(s.box_o2o_);
  }
}

StudentOutput FusedStudent::Forward(const torch::Tensor& images) const {
  torch::NoGradGuard no_grad;
  namespace F = torch::nn::functional;
  auto x = (images.to(torch::kFloat).contiguous(at::MemoryFormat::ChannelsLast) - StudentImpl::kPixelMean) *
           (1.f / StudentImpl::kPixelStd);
  auto c2 = Run(stage2_, Run(stem_, x));
  auto c3 = Run(stage3_, c2);
  auto c4 = Run(stage4_, c3);
  auto c5 = Run(stage5_, c4);
  auto up = [](const torch::Tensor& t, const torch::Tensor& like) {
    return F::interpolate(
        t, F::InterpolateFuncOptions().size(std::vector<int64_t>{like.size(2), like.size(3)}).mode(torch::kNearest));
  };
  // Keep every activation channels-last: a mixed-layout input sends a convolution down LibTorch's
  // slow im2col path instead of oneDNN.
  auto conv = [](const Conv& c, const torch::Tensor& t) {
    return torch::conv2d(t.contiguous(at::MemoryFormat::ChannelsLast), c.weight, c.bias);
  };
  auto p5 = conv(lat5_, c5);
  auto p4 = conv(lat4_, c4) + up(p5, c4);
  auto p3 = conv(lat3_, c3) + up(p4, c3);
  auto p2 = torch::relu(conv(lat2_, c2) + up(p3, c2)).contiguous(at::MemoryFormat::ChannelsLast);
  auto feat = torch::relu(Run(tower_, p2));
  StudentOutput out;
  if (options_.one_to_one) {
    // NMS-free inference needs only the one-to-one branch.
    auto f2 =
        Run(o2o_tower_, options_.one_to_one_stride == 8
                            ? F::avg_pool2d(feat, F::AvgPool2dFuncOptions(2)).contiguous(at::MemoryFormat::ChannelsLast)
                            : feat);
    out.cls_o2o = conv(cls_o2o_, f2);
    out.box_o2o = F::softplus(conv(box_o2o_, f2)) * StudentImpl::kBoxScale;
  } else {
    out.cls = conv(cls_, feat);
    out.box = F::softplus(conv(box_, feat)) * StudentImpl::kBoxScale;
  }
  return out;
}

std::vector<std::string> StudentPostTapParameterNames(const StudentImpl& student, CrossKdTap tap) {
  std::vector<std::string> names;
  for (const auto& p : student.named_parameters(/*recurse=*/true)) {
    const std::string& n = p.key();
    const bool after = n.rfind("cls", 0) == 0 || n.rfind("box", 0) == 0 || n.rfind("o2o_tower", 0) == 0 ||
                       (tap == CrossKdTap::kNeck && n.rfind("tower.", 0) == 0);
    if (after) names.push_back(n);
  }
  return names;
}

}  // namespace kd::model
