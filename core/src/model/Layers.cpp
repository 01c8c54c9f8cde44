#include "Layers.h"

#include "wfm/Error.h"
#include "wfm/model/Attention.h"

#include <torch/torch.h>

namespace wfm::model::layers {

torch::nn::Linear makeLinear(std::int64_t in, std::int64_t out, double initScale)
{
    torch::nn::Linear lin(in, out);
    lecunNormal_(lin->weight, initScale);
    torch::NoGradGuard noGrad;
    lin->bias.zero_();
    return lin;
}

torch::Tensor timeFeatures(const torch::Tensor& t, std::int64_t B, const torch::Tensor& omega,
    const torch::TensorOptions& options)
{
    const auto times = t.reshape({ -1 }).to(options).expand({ B });
    const auto phase = times.unsqueeze(1) * omega.to(options).unsqueeze(0); // [B,F]
    return torch::cat({ torch::cos(phase), torch::sin(phase) }, 1);
}

torch::Tensor labelOneHot(const torch::Tensor& labels, std::int64_t B, std::int64_t L,
    const torch::TensorOptions& options, const char* model)
{
    if (!labels.defined()) {
        return torch::zeros({ B, L }, options);
    }
    WFM_CHECK(labels.dim() == 1 && labels.size(0) == B, model, ": labels must be [B] = [", B, "], got ",
        labels.sizes());
    WFM_CHECK(!labels.is_floating_point() && labels.scalar_type() != torch::kBool, model,
        ": labels must be integers, got ", labels.scalar_type());
    const auto lab = labels.to(torch::TensorOptions().dtype(torch::kLong).device(options.device()));
    if (B > 0) {
        const std::int64_t lo = lab.min().item<std::int64_t>();
        const std::int64_t hi = lab.max().item<std::int64_t>();
        WFM_CHECK(lo >= 0 && hi <= L, model, ": labels must be in [0, ", L, "] (", L, " = null), got [", lo,
            ", ", hi, "]");
    }
    return torch::one_hot(lab, L + 1).narrow(1, 0, L).to(options);
}

torch::Tensor normalize(torch::nn::LayerNorm& norm, const torch::Tensor& x)
{
    return norm(x.to(norm->weight.scalar_type()));
}

} // namespace wfm::model::layers
