#include "wfm/flow/Generate.h"

#include "wfm/Error.h"
#include "wfm/flow/TrainStep.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>

namespace wfm::flow {

torch::Tensor integrateClouds(const CloudVelocityFn& velocity, const torch::Tensor& x0,
    const torch::Tensor& mask, int steps, Integrator integrator, torch::Tensor* trajectory)
{
    torch::NoGradGuard noGrad;
    WFM_CHECK(steps >= 1, "integrateClouds: steps must be >= 1 (got ", steps, ")");
    WFM_CHECK(x0.dim() == 3, "integrateClouds: x0 must be [K,N,d], got ", x0.sizes());
    WFM_CHECK(mask.dim() == 2 && mask.size(0) == x0.size(0) && mask.size(1) == x0.size(1),
        "integrateClouds: mask must be [K,N] = ", x0.sizes().slice(0, 2), ", got ", mask.sizes());
    const int64_t K = x0.size(0);
    const auto live = (mask > 0).unsqueeze(2).to(x0.scalar_type());
    auto x = x0 * live;
    std::vector<torch::Tensor> frames;
    if (trajectory) {
        frames.reserve(steps + 1);
        frames.push_back(x);
    }
    const double h = 1.0 / steps;
    auto v = [&](const torch::Tensor& xs, double t) {
        auto tt = torch::full({ K }, t, x0.options());
        return velocity(xs, tt) * live;
    };
    for (int s = 0; s < steps; ++s) {
        const double t = s * h;
        switch (integrator) {
        case Integrator::Euler:
            x = x + h * v(x, t);
            break;
        case Integrator::Midpoint: {
            auto k1 = v(x, t);
            x = x + h * v(x + 0.5 * h * k1, t + 0.5 * h);
            break;
        }
        case Integrator::Heun: {
            auto k1 = v(x, t);
            auto k2 = v(x + h * k1, t + h);
            x = x + 0.5 * h * (k1 + k2);
            break;
        }
        }
        if (trajectory) {
            frames.push_back(x);
        }
    }
    if (trajectory) {
        *trajectory = torch::stack(frames);
    }
    return x;
}

std::int64_t resolveLabel(const std::string& text, const std::vector<std::string>& names)
{
    for (size_t k = 0; k < names.size(); ++k) {
        if (names[k] == text) {
            return static_cast<std::int64_t>(k);
        }
    }
    std::string list;
    for (const auto& n : names) {
        list += (list.empty() ? "" : ", ") + n;
    }
    if (names.empty()) {
        throw ConfigError("label '" + text + "': the model was trained without labels");
    }
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (!text.empty() && end && *end == '\0') {
        if (v >= 0 && v < static_cast<long long>(names.size())) {
            return v;
        }
        throw ConfigError("label index " + text + " out of range [0, " + std::to_string(names.size())
            + ") (labels: " + list + ")");
    }
    throw ConfigError("unknown label '" + text + "' (labels: " + list + ")");
}

CloudGenerator::CloudGenerator(TrainConfig config, model::SetTransformer net,
    model::SetTransformer ema, data::Normalization normalization, data::SourceNoise noise,
    torch::Tensor trainSizes, std::vector<std::string> labelNames, std::int64_t step)
    : m_config(std::move(config))
    , m_net(std::move(net))
    , m_ema(std::move(ema))
    , m_normalization(std::move(normalization))
    , m_noise(std::move(noise))
    , m_trainSizes(trainSizes.to(torch::kCPU).to(torch::kLong).contiguous())
    , m_labelNames(std::move(labelNames))
    , m_step(step)
{
    m_net->eval();
    if (!m_ema.is_empty()) {
        m_ema->eval();
    }
    WFM_CHECK(m_trainSizes.numel() > 0, "CloudGenerator: no training sizes");
}

std::int64_t CloudGenerator::dim() const
{
    return m_net->options().dim;
}

c10::Device CloudGenerator::device() const
{
    return m_net->head->weight.device();
}

GeneratedClouds CloudGenerator::generate(const GenerateRequest& r) const
{
    const auto t0 = std::chrono::steady_clock::now();
    torch::NoGradGuard noGrad;
    WFM_CHECK(r.count >= 1, "generate: count must be >= 1 (got ", r.count, ")");
    WFM_CHECK(r.points >= 0, "generate: points must be >= 0 (got ", r.points, ")");
    WFM_CHECK(r.sizes.empty() || static_cast<std::int64_t>(r.sizes.size()) == r.count,
        "generate: ", r.sizes.size(), " sizes given for ", r.count, " clouds");
    WFM_CHECK(r.labels.empty() || static_cast<std::int64_t>(r.labels.size()) == r.count,
        "generate: ", r.labels.size(), " labels given for ", r.count, " clouds");
    const int64_t K = r.count;
    const int64_t L = static_cast<int64_t>(m_labelNames.size());
    const int steps = r.steps > 0 ? r.steps : m_config.generate.steps;
    const Integrator integrator = r.integrator.value_or(m_config.generate.integrator);
    const double guidance = std::isnan(r.guidance) ? m_config.generate.guidance : r.guidance;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(r.seed);

    // Sizes.
    std::vector<int64_t> sizes(K);
    for (int64_t k = 0; k < K; ++k) {
        if (!r.sizes.empty()) {
            sizes[k] = r.sizes[k];
        } else if (r.points > 0) {
            sizes[k] = r.points;
        } else {
            const int64_t j = at::randint(m_trainSizes.size(0), { 1 }, gen, torch::kLong).item<int64_t>();
            sizes[k] = m_trainSizes[j].item<int64_t>();
        }
        WFM_CHECK(sizes[k] >= 1, "generate: cloud ", k, " has size ", sizes[k]);
    }
    const int64_t N = *std::max_element(sizes.begin(), sizes.end());

    // Labels.
    torch::Tensor labels;
    if (L > 0) {
        labels = torch::empty({ K }, torch::kLong);
        auto acc = labels.accessor<int64_t, 1>();
        for (int64_t k = 0; k < K; ++k) {
            int64_t lab = r.labels.empty() ? r.label : r.labels[k];
            if (lab == GenerateRequest::kRandomLabel) {
                lab = at::randint(L, { 1 }, gen, torch::kLong).item<int64_t>();
            }
            WFM_CHECK(lab == GenerateRequest::kNullLabel || (lab >= 0 && lab < L),
                "generate: label ", lab, " out of range [0, ", L, ")");
            acc[k] = lab;
        }
    } else {
        WFM_CHECK(r.labels.empty() && (r.label == GenerateRequest::kRandomLabel || r.label == GenerateRequest::kNullLabel),
            "generate: the model was trained without labels");
    }

    // Continuous conditions.
    const int64_t condDim = m_net->options().condDim;
    torch::Tensor cond;
    if (condDim > 0) {
        WFM_CHECK(r.cond.defined(), "generate: the model is conditioned on vectors of width ", condDim,
            "; pass one per cloud");
        WFM_CHECK(r.cond.dim() == 2 && r.cond.size(0) == K && r.cond.size(1) == condDim,
            "generate: cond must be [", K, ",", condDim, "], got ", r.cond.sizes());
        WFM_CHECK(torch::isfinite(r.cond).all().item<bool>(), "generate: cond holds NaN or inf");
        cond = r.cond.to(torch::kFloat);
    } else {
        WFM_CHECK(!r.cond.defined(), "generate: the model takes no conditioning vectors");
    }

    // Mask and noise.
    auto weights = torch::zeros({ K, N }, torch::kFloat);
    for (int64_t k = 0; k < K; ++k) {
        weights[k].narrow(0, 0, sizes[k]).fill_(1.0f / static_cast<float>(sizes[k]));
    }
    torch::Tensor indices;
    if (m_noise.kind() == data::NoiseKind::Clouds) {
        indices = torch::arange(K, torch::kLong).remainder(m_noise.sources().count());
    }
    auto x0 = m_noise.sample(weights, indices, gen);

    const auto dev = device();
    model::SetTransformer net = (r.ema && !m_ema.is_empty()) ? m_ema : m_net;
    int64_t chunk = r.chunk;
    if (chunk <= 0) {
        // Attention scores dominate: keep chunk * heads * N^2 within the size the set transformer
        // computes in one piece (AttentionImpl::Auto switches to the ~20x slower chunked kernel
        // above 2^24 scores), and the activations within a few hundred MB.
        const int64_t scores = std::max<int64_t>(1, net->options().heads * N * N);
        const int64_t activations = std::max<int64_t>(1, N * net->options().width * 8);
        chunk = std::clamp<int64_t>(std::min((int64_t(1) << 24) / scores, (int64_t(1) << 26) / activations), 1, 256);
    }
    std::vector<torch::Tensor> outs;
    std::vector<torch::Tensor> trajs;
    for (int64_t s = 0; s < K; s += chunk) {
        const int64_t n = std::min(chunk, K - s);
        auto w = weights.narrow(0, s, n).to(dev);
        auto x = x0.narrow(0, s, n).to(dev);
        torch::Tensor lab = labels.defined() ? labels.narrow(0, s, n).to(dev) : torch::Tensor();
        torch::Tensor c = cond.defined() ? cond.narrow(0, s, n).to(dev) : torch::Tensor();
        torch::Tensor labForNet;
        bool guided = false;
        if (lab.defined()) {
            labForNet = torch::where(lab == GenerateRequest::kNullLabel, torch::full_like(lab, L), lab);
            guided = guidance != 1.0 && (lab != GenerateRequest::kNullLabel).all().item<bool>();
        }
        CloudVelocityFn v = [&](const torch::Tensor& xs, const torch::Tensor& t) {
            AutocastGuard autocast(r.mixedPrecision, xs.device());
            torch::Tensor out = guided ? model::guidedVelocity(net, xs, t, w, labForNet, guidance, c)
                                       : net->forward(xs, t, w, labForNet, c);
            return out.to(xs.scalar_type());
        };
        torch::Tensor traj;
        auto y = integrateClouds(v, x, w, steps, integrator, r.trajectory ? &traj : nullptr);
        outs.push_back(m_normalization.invert(y, w).to(torch::kCPU).to(torch::kFloat));
        if (r.trajectory) {
            auto wT = w.unsqueeze(0).expand({ traj.size(0), n, N });
            trajs.push_back(m_normalization.invert(traj, wT).to(torch::kCPU).to(torch::kFloat));
        }
    }
    GeneratedClouds g;
    g.points = torch::cat(outs, 0);
    g.weights = weights;
    g.labels = labels;
    if (r.trajectory) {
        g.trajectory = torch::cat(trajs, 1);
    }
    g.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return g;
}

} // namespace wfm::flow
