#include "wfm/model/Attention.h"

#include "wfm/Error.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace wfm::model {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

/// splitmix64 finaliser: decorrelates the per-chunk generator seeds.
uint64_t mixSeed(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

int64_t drawSeed()
{
    // From the default CPU generator, so torch::manual_seed() fixes every mask.
    return torch::randint(0, std::numeric_limits<int64_t>::max(), { 1 }, torch::kLong)
        .item<int64_t>();
}

/// Reference semantics with stock autograd ops; [B,N,H,D] in and out.
torch::Tensor naiveAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
    const torch::Tensor& keyMask, double p, int64_t seed, bool broadcast)
{
    const int64_t B = q.size(0), N = q.size(1), H = q.size(2), D = q.size(3);
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    const auto qh = q.permute({ 0, 2, 1, 3 });
    const auto kh = k.permute({ 0, 2, 1, 3 });
    const auto vh = v.permute({ 0, 2, 1, 3 });
    auto s = torch::matmul(qh, kh.transpose(-2, -1)) * scale; // [B,H,N,N]
    torch::Tensor alive;
    if (keyMask.defined()) {
        // A cloud without live keys would give 0/0 in softmax; let it attend uniformly
        // (finite) and zero its rows afterwards, which keeps the gradient finite too.
        alive = keyMask.any(1);
        const auto effective = keyMask | alive.logical_not().unsqueeze(1);
        s = s.masked_fill(effective.logical_not().view({ B, 1, 1, N }), -kInf);
    }
    auto prob = torch::softmax(s, -1);
    if (alive.defined() && !alive.all().item<bool>()) {
        prob = prob * alive.to(prob.scalar_type()).view({ B, 1, 1, 1 });
    }
    if (p > 0.0) {
        prob = prob * attentionDropoutMask(seed, 0, N, N, B, H, p, broadcast, prob.options());
    }
    return torch::matmul(prob, vh).permute({ 0, 2, 1, 3 }).contiguous();
}

/// What the chunked kernels need besides the tensors.
struct ChunkConfig
{
    int64_t chunk = 0;
    double p = 0.0;
    int64_t seed = 0;
    bool broadcast = true;

    void save(torch::autograd::AutogradContext* ctx) const
    {
        ctx->saved_data["chunk"] = chunk;
        ctx->saved_data["p"] = p;
        ctx->saved_data["seed"] = seed;
        ctx->saved_data["broadcast"] = broadcast;
    }
    static ChunkConfig load(torch::autograd::AutogradContext* ctx)
    {
        return { ctx->saved_data["chunk"].toInt(), ctx->saved_data["p"].toDouble(),
            ctx->saved_data["seed"].toInt(), ctx->saved_data["broadcast"].toBool() };
    }
};

/// A [rows, cols] scratch buffer per batch item, reused by every chunk (fresh chunk-sized
/// allocations would each be mmapped and page-faulted anew).
class ChunkBuffer
{
public:
    ChunkBuffer(int64_t batch, int64_t rows, int64_t cols, const torch::TensorOptions& options)
        : m_storage(torch::empty({ batch * rows * cols }, options))
        , m_batch(batch)
        , m_cols(cols)
    {
    }
    /// A contiguous [batch, rows, cols] view (rows <= the constructor's).
    torch::Tensor get(int64_t rows) const
    {
        return m_storage.narrow(0, 0, m_batch * rows * m_cols).view({ m_batch, rows, m_cols });
    }

private:
    torch::Tensor m_storage;
    int64_t m_batch, m_cols;
};

/// `[B,1,1,N]` true where a key is padded; undefined when every key is live. keyMask: [B,N]
/// bool or an empty tensor (autograd::Function::apply rejects undefined inputs).
torch::Tensor deadKeys(const torch::Tensor& keyMask)
{
    if (keyMask.numel() == 0) {
        return {};
    }
    return keyMask.logical_not().view({ keyMask.size(0), 1, 1, keyMask.size(1) });
}

/// Forward over query chunks. q, k, v: [B,H,N,D] contiguous. Returns the output [B,N,H,D]
/// (contiguous, so the output projection's saved input is this very tensor) and the per-row
/// log-sum-exp [B,H,N] of the scaled, masked scores.
std::pair<torch::Tensor, torch::Tensor> chunkedForward(const torch::Tensor& q,
    const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& dead,
    const ChunkConfig& cfg)
{
    const int64_t B = q.size(0), H = q.size(1), N = q.size(2), D = q.size(3);
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    auto out = torch::empty({ B, N, H, D }, q.options());
    auto outHeads = out.permute({ 0, 2, 1, 3 }); // [B,H,N,D] view
    auto lse = torch::empty({ B, H, N }, q.options());
    const auto k3t = k.view({ B * H, N, D }).transpose(1, 2);
    const auto v3 = v.view({ B * H, N, D });
    const ChunkBuffer scores(B * H, cfg.chunk, N, q.options());
    for (int64_t r0 = 0; r0 < N; r0 += cfg.chunk) {
        const int64_t C = std::min(cfg.chunk, N - r0);
        const auto qc = q.narrow(2, r0, C).mul(scale).view({ B * H, C, D });
        auto s = scores.get(C);
        torch::bmm_out(s, qc, k3t);
        if (dead.defined()) {
            s.view({ B, H, C, N }).masked_fill_(dead, -kInf);
        }
        auto m = s.amax(-1, true);
        m.masked_fill_(m == -kInf, 0.0); // rows without live keys
        s.sub_(m).exp_();
        // The row maximum contributes exp(0) = 1, so live rows have l >= 1; rows without live
        // keys have l = 0 and all-zero probabilities, kept at 0 by the clamp.
        auto l = s.sum(-1, true).clamp_min_(1.0);
        s.div_(l);
        lse.narrow(2, r0, C).copy_((m + l.log()).view({ B, H, C }));
        if (cfg.p > 0.0) {
            s.view({ B, H, C, N })
                .mul_(attentionDropoutMask(cfg.seed, r0, C, N, B, H, cfg.p, cfg.broadcast,
                    s.options()));
        }
        outHeads.narrow(2, r0, C).copy_(torch::bmm(s, v3).view({ B, H, C, D }));
    }
    return { out, lse };
}

/// Backward over query chunks: recomputes each chunk's probabilities as exp(S - lse) and
/// regenerates its dropout mask from (seed, chunk start). gradOut: [B,N,H,D]. Returns dq, dk,
/// dv [B,H,N,D].
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> chunkedBackward(const torch::Tensor& q,
    const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& dead,
    const torch::Tensor& out, const torch::Tensor& lse, torch::Tensor gradOut,
    const ChunkConfig& cfg)
{
    const int64_t B = q.size(0), H = q.size(1), N = q.size(2), D = q.size(3);
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    gradOut = gradOut.contiguous();                         // [B,N,H,D]
    const auto gradHeads = gradOut.permute({ 0, 2, 1, 3 }); // [B,H,N,D] view
    // rowsum(dP o P) = rowsum(dO o O), with dropout too (O = (P o Z) V).
    const auto delta = (gradOut * out).sum(-1).permute({ 0, 2, 1 }).contiguous(); // [B,H,N]

    auto dq = torch::empty_like(q);
    auto dk = torch::zeros_like(k);
    auto dv = torch::zeros_like(v);
    auto dk3 = dk.view({ B * H, N, D });
    auto dv3 = dv.view({ B * H, N, D });
    const auto k3 = k.view({ B * H, N, D });
    const auto k3t = k3.transpose(1, 2);
    const auto v3t = v.view({ B * H, N, D }).transpose(1, 2);
    const ChunkBuffer probBuffer(B * H, cfg.chunk, N, q.options());
    const ChunkBuffer gradBuffer(B * H, cfg.chunk, N, q.options());
    std::optional<ChunkBuffer> droppedBuffer;
    if (cfg.p > 0.0) {
        droppedBuffer.emplace(B * H, cfg.chunk, N, q.options());
    }
    for (int64_t r0 = 0; r0 < N; r0 += cfg.chunk) {
        const int64_t C = std::min(cfg.chunk, N - r0);
        const auto qc = q.narrow(2, r0, C).mul(scale).view({ B * H, C, D });
        auto prob = probBuffer.get(C); // scores, then probabilities, [BH,C,N]
        torch::bmm_out(prob, qc, k3t);
        if (dead.defined()) {
            prob.view({ B, H, C, N }).masked_fill_(dead, -kInf);
        }
        prob.sub_(lse.narrow(2, r0, C).reshape({ B * H, C, 1 })).exp_();
        const auto gradC = gradHeads.narrow(2, r0, C).reshape({ B * H, C, D });
        auto dS = gradBuffer.get(C); // dP of the dropped probabilities, then dS
        torch::bmm_out(dS, gradC, v3t);
        if (cfg.p > 0.0) {
            const auto z = attentionDropoutMask(cfg.seed, r0, C, N, B, H, cfg.p, cfg.broadcast,
                prob.options());
            auto dropped = droppedBuffer->get(C);
            auto droppedHeads = dropped.view({ B, H, C, N });
            torch::mul_out(droppedHeads, prob.view({ B, H, C, N }), z);
            dv3.baddbmm_(dropped.transpose(1, 2), gradC);
            dS.view({ B, H, C, N }).mul_(z);
        } else {
            dv3.baddbmm_(prob.transpose(1, 2), gradC);
        }
        dS.sub_(delta.narrow(2, r0, C).reshape({ B * H, C, 1 })).mul_(prob);
        dq.narrow(2, r0, C).copy_(torch::bmm(dS, k3).mul_(scale).view({ B, H, C, D }));
        dk3.baddbmm_(dS.transpose(1, 2), qc); // qc carries the scale
    }
    return { dq, dk, dv };
}

/// Chunked attention on given q, k, v [B,H,N,D] (contiguous); output [B,N,H,D].
class ChunkedAttentionFunction : public torch::autograd::Function<ChunkedAttentionFunction>
{
public:
    static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q,
        const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& keyMask,
        int64_t chunk, double p, int64_t seed, bool broadcast)
    {
        const ChunkConfig cfg { chunk, p, seed, broadcast };
        auto [out, lse] = chunkedForward(q, k, v, deadKeys(keyMask), cfg);
        ctx->save_for_backward({ q, k, v, keyMask, out, lse });
        cfg.save(ctx);
        return out;
    }

    static torch::autograd::variable_list backward(
        torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads)
    {
        const auto saved = ctx->get_saved_variables();
        const auto cfg = ChunkConfig::load(ctx);
        torch::NoGradGuard noGrad;
        auto [dq, dk, dv] = chunkedBackward(saved[0], saved[1], saved[2], deadKeys(saved[3]),
            saved[4], saved[5], grads[0], cfg);
        return { dq, dk, dv, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor() };
    }
};

/// Q, K, V [B,H,N,D] (contiguous) from x [B,N,E] and the joint projection W [3E,E], b [3E].
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> projectQkv(const torch::Tensor& x,
    const torch::Tensor& weight, const torch::Tensor& bias, int64_t heads)
{
    const int64_t B = x.size(0), N = x.size(1), E = x.size(2), D = E / heads;
    auto qkv = torch::addmm(bias, x.reshape({ B * N, E }), weight.t()).view({ B, N, 3, heads, D });
    auto part = [&](int64_t i) { return qkv.select(2, i).permute({ 0, 2, 1, 3 }).contiguous(); };
    return { part(0), part(1), part(2) };
}

/// Chunked self-attention with the Q/K/V projection fused in: saves x (which the projection
/// needs anyway) instead of Q, K and V, and recomputes them in backward (one [BN,E]x[E,3E]
/// product), which saves 2 of the 3 [B,N,E] tensors per block.
class ProjectedAttentionFunction : public torch::autograd::Function<ProjectedAttentionFunction>
{
public:
    static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
        const torch::Tensor& weight, const torch::Tensor& bias, const torch::Tensor& keyMask,
        int64_t heads, int64_t chunk, double p, int64_t seed, bool broadcast)
    {
        // Autocast would turn the projection bfloat16 here but not in backward's recomputation;
        // the kernel runs in the inputs' precision instead.
        c10::impl::ExcludeDispatchKeyGuard noAutocast(c10::autocast_dispatch_keyset);
        const ChunkConfig cfg { chunk, p, seed, broadcast };
        torch::Tensor out, lse;
        {
            auto [q, k, v] = projectQkv(x, weight, bias, heads);
            std::tie(out, lse) = chunkedForward(q, k, v, deadKeys(keyMask), cfg);
        }
        ctx->save_for_backward({ x, weight, bias, keyMask, out, lse });
        ctx->saved_data["heads"] = heads;
        cfg.save(ctx);
        return out;
    }

    static torch::autograd::variable_list backward(
        torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads)
    {
        const auto saved = ctx->get_saved_variables();
        const auto& x = saved[0];
        const auto& weight = saved[1];
        const auto& bias = saved[2];
        const auto cfg = ChunkConfig::load(ctx);
        const int64_t heads = ctx->saved_data["heads"].toInt();
        const int64_t B = x.size(0), N = x.size(1), E = x.size(2), D = E / heads;
        torch::NoGradGuard noGrad;
        c10::impl::ExcludeDispatchKeyGuard noAutocast(c10::autocast_dispatch_keyset);
        // Gradient of the joint projection output, laid out as [B,N,3,H,D] = [BN,3E].
        auto gradQkv = torch::empty({ B, N, 3, heads, D }, x.options());
        {
            auto [q, k, v] = projectQkv(x, weight, bias, heads);
            auto [dq, dk, dv] = chunkedBackward(q, k, v, deadKeys(saved[3]), saved[4], saved[5],
                grads[0], cfg);
            gradQkv.select(2, 0).copy_(dq.permute({ 0, 2, 1, 3 }));
            gradQkv.select(2, 1).copy_(dk.permute({ 0, 2, 1, 3 }));
            gradQkv.select(2, 2).copy_(dv.permute({ 0, 2, 1, 3 }));
        }
        const auto g = gradQkv.view({ B * N, 3 * E });
        auto dx = torch::mm(g, weight).view({ B, N, E });
        auto dWeight = torch::mm(g.t(), x.reshape({ B * N, E }));
        auto dBias = g.sum(0);
        return { dx, dWeight, dBias, torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor() };
    }
};

#if TORCH_VERSION_MAJOR >= 2
/// LibTorch 2.x fused kernels (CUDA). Same masking semantics as naiveAttention; dropout is the
/// kernel's own (elementwise, CUDA generator).
torch::Tensor fusedAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
    const torch::Tensor& keyMask, double p)
{
    const int64_t B = q.size(0), N = q.size(1);
    const auto qh = q.transpose(1, 2);
    const auto kh = k.transpose(1, 2);
    const auto vh = v.transpose(1, 2);
    c10::optional<torch::Tensor> attnMask;
    torch::Tensor alive;
    if (keyMask.defined()) {
        alive = keyMask.any(1);
        attnMask = (keyMask | alive.logical_not().unsqueeze(1)).view({ B, 1, 1, N });
    }
    auto o = at::scaled_dot_product_attention(qh, kh, vh, attnMask, p, false);
    if (alive.defined()) {
        o = o * alive.to(o.scalar_type()).view({ B, 1, 1, 1 });
    }
    return o.transpose(1, 2).contiguous();
}
#endif

} // namespace

std::string attentionImplName(AttentionImpl impl)
{
    switch (impl) {
    case AttentionImpl::Auto:
        return "auto";
    case AttentionImpl::Naive:
        return "naive";
    case AttentionImpl::Chunked:
        return "chunked";
    }
    return "auto";
}

AttentionImpl attentionImplFromString(const std::string& name)
{
    if (name == "auto") {
        return AttentionImpl::Auto;
    }
    if (name == "naive") {
        return AttentionImpl::Naive;
    }
    if (name == "chunked") {
        return AttentionImpl::Chunked;
    }
    throw ConfigError("unknown attention implementation '" + name
        + "' (expected auto, naive or chunked)");
}

AttentionImpl resolveAttentionImpl(const AttentionOptions& options, int64_t batch, int64_t heads,
    int64_t points, const torch::Device& device)
{
    (void)device;
    if (options.impl != AttentionImpl::Auto) {
        return options.impl;
    }
    const double entries = static_cast<double>(batch) * static_cast<double>(heads)
        * static_cast<double>(points) * static_cast<double>(points);
    return entries > static_cast<double>(options.autoThreshold) ? AttentionImpl::Chunked
                                                                : AttentionImpl::Naive;
}

int64_t resolveChunkSize(const AttentionOptions& options, int64_t batch, int64_t heads,
    int64_t points)
{
    const int64_t n = std::max<int64_t>(points, 1);
    if (options.chunkSize > 0) {
        return std::min(options.chunkSize, n);
    }
    const int64_t perRow = std::max<int64_t>(batch * heads * n, 1);
    return std::clamp<int64_t>(kAutoChunkElements / perRow, std::min<int64_t>(16, n), n);
}

torch::Tensor attentionDropoutMask(int64_t seed, int64_t rowStart, int64_t rows, int64_t cols,
    int64_t batch, int64_t heads, double p, bool broadcast, const torch::TensorOptions& options)
{
    WFM_CHECK(p >= 0.0 && p < 1.0, "attention dropout must be in [0, 1), got ", p);
    const uint64_t mixed = mixSeed(static_cast<uint64_t>(seed)
        ^ mixSeed(static_cast<uint64_t>(rowStart) + 0x632BE59BD9B4E019ULL));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(mixed);
    const std::vector<int64_t> shape = broadcast
        ? std::vector<int64_t> { 1, 1, rows, cols }
        : std::vector<int64_t> { batch, heads, rows, cols };
    auto keep = torch::empty(shape, torch::TensorOptions().dtype(torch::kFloat))
                    .bernoulli_(1.0 - p, gen);
    return keep.to(options.device(), options.dtype().toScalarType()).mul_(1.0 / (1.0 - p));
}

namespace {

/// Checks the options and the key mask; returns the mask as bool on `device` (or undefined).
torch::Tensor checkedKeyMask(const torch::Tensor& keyMask, int64_t B, int64_t N,
    const AttentionOptions& options, const torch::Device& device)
{
    WFM_CHECK(options.dropout >= 0.0 && options.dropout < 1.0,
        "attention: dropout must be in [0, 1), got ", options.dropout);
    WFM_CHECK(options.chunkSize >= 0, "attention: chunkSize must be >= 0, got ", options.chunkSize);
    if (!keyMask.defined()) {
        return {};
    }
    WFM_CHECK(keyMask.dim() == 2 && keyMask.size(0) == B && keyMask.size(1) == N,
        "attention: keyMask must be [B,N] = [", B, ",", N, "], got ", keyMask.sizes());
    return (keyMask.scalar_type() == torch::kBool ? keyMask : keyMask > 0).to(device);
}

torch::Tensor emptyMaskIfUndefined(const torch::Tensor& mask, const torch::Device& device)
{
    return mask.defined()
        ? mask
        : torch::empty({ 0 }, torch::TensorOptions().dtype(torch::kBool).device(device));
}

} // namespace

torch::Tensor multiHeadAttention(const torch::Tensor& q, const torch::Tensor& k,
    const torch::Tensor& v, const torch::Tensor& keyMask, const AttentionOptions& options,
    bool training)
{
    WFM_CHECK(q.defined() && k.defined() && v.defined(), "attention: q, k, v must be defined");
    WFM_CHECK(q.dim() == 4, "attention: q must be [B,N,H,D], got ", q.sizes());
    WFM_CHECK(k.sizes() == q.sizes() && v.sizes() == q.sizes(),
        "attention: q, k, v must have the same shape, got ", q.sizes(), ", ", k.sizes(), ", ",
        v.sizes());
    WFM_CHECK(q.is_floating_point() && k.scalar_type() == q.scalar_type()
            && v.scalar_type() == q.scalar_type(),
        "attention: q, k, v must share one floating dtype");
    const int64_t B = q.size(0), N = q.size(1), H = q.size(2);
    const auto mask = checkedKeyMask(keyMask, B, N, options, q.device());
    if (N == 0 || B == 0) {
        return torch::zeros_like(q);
    }
    const double p = training ? options.dropout : 0.0;

#if TORCH_VERSION_MAJOR >= 2
    if (options.impl == AttentionImpl::Auto && q.is_cuda()) {
        return fusedAttention(q, k, v, mask, p);
    }
#endif

    const int64_t seed = p > 0.0 ? (options.seed ? *options.seed : drawSeed()) : 0;
    const auto impl = resolveAttentionImpl(options, B, H, N, q.device());
    if (impl == AttentionImpl::Naive) {
        return naiveAttention(q, k, v, mask, p, seed, options.broadcastDropout);
    }
    const int64_t chunk = resolveChunkSize(options, B, H, N);
    // The chunked kernel runs in one precision, at least float32 (autocast does not reach inside
    // a custom autograd function, so bfloat16 projections come here as bfloat16).
    const auto dtype = at::promote_types(at::promote_types(q.scalar_type(), k.scalar_type()),
        at::promote_types(v.scalar_type(), torch::kFloat));
    const auto qh = q.permute({ 0, 2, 1, 3 }).to(dtype).contiguous();
    const auto kh = k.permute({ 0, 2, 1, 3 }).to(dtype).contiguous();
    const auto vh = v.permute({ 0, 2, 1, 3 }).to(dtype).contiguous();
    return ChunkedAttentionFunction::apply(qh, kh, vh, emptyMaskIfUndefined(mask, q.device()),
        chunk, p, seed, options.broadcastDropout);
}

torch::Tensor projectedSelfAttention(const torch::Tensor& x, const torch::Tensor& weight,
    const torch::Tensor& bias, int64_t heads, const torch::Tensor& keyMask,
    const AttentionOptions& options, bool training)
{
    WFM_CHECK(x.defined() && x.dim() == 3, "attention: x must be [B,N,E], got ",
        x.defined() ? x.sizes() : torch::IntArrayRef {});
    const int64_t B = x.size(0), N = x.size(1), E = x.size(2);
    WFM_CHECK(heads > 0 && E % heads == 0, "attention: width ", E,
        " must be a positive multiple of heads ", heads);
    WFM_CHECK(weight.defined() && weight.dim() == 2 && weight.size(0) == 3 * E
            && weight.size(1) == E,
        "attention: projection weight must be [3E,E] = [", 3 * E, ",", E, "]");
    WFM_CHECK(bias.defined() && bias.dim() == 1 && bias.size(0) == 3 * E,
        "attention: projection bias must be [3E] = [", 3 * E, "]");
    WFM_CHECK(x.is_floating_point() && weight.scalar_type() == x.scalar_type()
            && bias.scalar_type() == x.scalar_type(),
        "attention: x, weight and bias must share one floating dtype");
    const int64_t D = E / heads;
    const auto mask = checkedKeyMask(keyMask, B, N, options, x.device());
    const double p = training ? options.dropout : 0.0;
    bool chunked = resolveAttentionImpl(options, B, heads, N, x.device()) == AttentionImpl::Chunked;
#if TORCH_VERSION_MAJOR >= 2
    chunked = chunked && !(options.impl == AttentionImpl::Auto && x.is_cuda());
#endif
    if (!chunked || N == 0 || B == 0) {
        const auto qkv = torch::nn::functional::linear(x, weight, bias).view({ B, N, 3, heads, D });
        return multiHeadAttention(qkv.select(2, 0), qkv.select(2, 1), qkv.select(2, 2), mask,
            options, training);
    }
    const int64_t seed = p > 0.0 ? (options.seed ? *options.seed : drawSeed()) : 0;
    return ProjectedAttentionFunction::apply(x.to(weight.scalar_type()).contiguous(), weight, bias,
        emptyMaskIfUndefined(mask, x.device()), heads, resolveChunkSize(options, B, heads, N), p,
        seed, options.broadcastDropout);
}

void lecunNormal_(torch::Tensor weight, double scale)
{
    WFM_CHECK(weight.dim() == 2 && weight.size(1) > 0, "lecunNormal_: weight must be [out, in]");
    torch::NoGradGuard noGrad;
    // Truncated normal by inverse CDF (as torch.nn.init.trunc_normal_): u uniform between the
    // CDF values of -2 and +2, x = sqrt(2) erfinv(2u - 1). 0.8796... is the standard deviation
    // of N(0,1) truncated to [-2, 2], so the variance comes out as scale / fan_in.
    const double stddev = std::sqrt(scale / static_cast<double>(weight.size(1)))
        / 0.87962566103423978;
    const double lo = std::erf(-2.0 / std::sqrt(2.0));
    const double hi = std::erf(2.0 / std::sqrt(2.0));
    weight.uniform_(lo, hi).erfinv_().mul_(std::sqrt(2.0) * stddev).clamp_(-2.0 * stddev,
        2.0 * stddev);
}

MultiheadAttentionImpl::MultiheadAttentionImpl(const MultiheadAttentionOptions& options_)
    : options(options_)
{
    reset();
}

void MultiheadAttentionImpl::reset()
{
    WFM_CHECK(options.embedDim > 0 && options.heads > 0 && options.embedDim % options.heads == 0,
        "attention: width ", options.embedDim, " must be a positive multiple of heads ",
        options.heads);
    const int64_t E = options.embedDim;
    inProjection = register_module("inProjection", torch::nn::Linear(E, 3 * E));
    outProjection = register_module("outProjection", torch::nn::Linear(E, E));
    for (auto* lin : { &inProjection, &outProjection }) {
        lecunNormal_((*lin)->weight);
        torch::NoGradGuard noGrad;
        (*lin)->bias.zero_();
    }
}

torch::Tensor MultiheadAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& keyMask)
{
    WFM_CHECK(x.dim() == 3 && x.size(2) == options.embedDim,
        "attention: input must be [B,N,", options.embedDim, "], got ", x.sizes());
    const auto o = projectedSelfAttention(x, inProjection->weight, inProjection->bias,
        options.heads, keyMask, options.attention, is_training());
    return outProjection(o.view({ x.size(0), x.size(1), options.embedDim }));
}

} // namespace wfm::model
