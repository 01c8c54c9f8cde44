#include "wfm/model/SetTransformer.h"

#include "wfm/Error.h"

#include "Layers.h"

#include <torch/torch.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <sstream>

namespace wfm::model {

namespace {

using layers::makeLinear;
using layers::normalize;

constexpr double kPi = 3.14159265358979323846;
constexpr double kLeakySlope = 0.01; // reference: nn.leaky_relu default of Flax

torch::nn::LayerNorm makeLayerNorm(int64_t width, double eps)
{
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({ width }).eps(eps));
}



/// y = LeakyReLU(Dropout(x)) in one autograd node that keeps y (which the next Linear keeps
/// anyway) and a bool keep-mask, instead of a float dropout mask plus y: 1 byte instead of
/// 4 per hidden unit. Gradient: dx = dy * keep / (1 - p) * (y > 0 ? 1 : slope).
class DropoutLeakyReluFunction : public torch::autograd::Function<DropoutLeakyReluFunction>
{
public:
    static torch::Tensor forward(
        torch::autograd::AutogradContext* ctx, const torch::Tensor& x, double p, double slope)
    {
        auto keep = torch::empty(x.sizes(), x.options().dtype(torch::kBool)).bernoulli_(1.0 - p);
        auto y = x.mul(1.0 / (1.0 - p)).masked_fill_(keep.logical_not(), 0.0);
        torch::leaky_relu_(y, slope);
        ctx->save_for_backward({ y, keep });
        ctx->saved_data["p"] = p;
        ctx->saved_data["slope"] = slope;
        return y;
    }

    static torch::autograd::variable_list backward(
        torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads)
    {
        const auto saved = ctx->get_saved_variables();
        const double p = ctx->saved_data["p"].toDouble();
        const double slope = ctx->saved_data["slope"].toDouble();
        torch::NoGradGuard noGrad;
        auto dx = torch::leaky_relu_backward(grads[0], saved[0], slope, true)
                      .mul_(1.0 / (1.0 - p))
                      .masked_fill_(saved[1].logical_not(), 0.0);
        return { dx, torch::Tensor(), torch::Tensor() };
    }
};

// --- a minimal reader for flat JSON objects (string, number and boolean values) --------------

struct JsonValue
{
    enum class Kind { String, Number, Bool } kind = Kind::Number;
    std::string text; ///< the string, or the number's literal
    bool flag = false;
};

class FlatJsonReader
{
public:
    explicit FlatJsonReader(const std::string& s)
        : m_s(s)
    {
    }

    std::map<std::string, JsonValue> read()
    {
        std::map<std::string, JsonValue> out;
        expect('{');
        skipSpace();
        if (peek() == '}') {
            ++m_pos;
        } else {
            while (true) {
                skipSpace();
                const std::string key = readString();
                expect(':');
                skipSpace();
                WFM_CHECK(!out.count(key), "options JSON: duplicate key '", key, "'");
                out[key] = readValue();
                skipSpace();
                const char c = next();
                if (c == '}') {
                    break;
                }
                WFM_CHECK(c == ',', "options JSON: expected ',' or '}' at offset ", m_pos - 1);
            }
        }
        skipSpace();
        WFM_CHECK(m_pos == m_s.size(), "options JSON: trailing characters at offset ", m_pos);
        return out;
    }

private:
    char peek() const { return m_pos < m_s.size() ? m_s[m_pos] : '\0'; }
    char next()
    {
        WFM_CHECK(m_pos < m_s.size(), "options JSON: unexpected end of text");
        return m_s[m_pos++];
    }
    void skipSpace()
    {
        while (m_pos < m_s.size() && std::isspace(static_cast<unsigned char>(m_s[m_pos]))) {
            ++m_pos;
        }
    }
    void expect(char c)
    {
        skipSpace();
        const char got = next();
        WFM_CHECK(got == c, "options JSON: expected '", c, "' at offset ", m_pos - 1, ", got '",
            got, "'");
    }
    std::string readString()
    {
        expect('"');
        std::string out;
        while (true) {
            char c = next();
            if (c == '"') {
                return out;
            }
            if (c == '\\') {
                c = next();
                switch (c) {
                case '"':
                case '\\':
                case '/':
                    out += c;
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 't':
                    out += '\t';
                    break;
                default:
                    throw ConfigError(detail::concat("options JSON: unsupported escape '\\", c,
                        "' at offset ", m_pos - 1));
                }
                continue;
            }
            out += c;
        }
    }
    JsonValue readValue()
    {
        JsonValue v;
        const char c = peek();
        if (c == '"') {
            v.kind = JsonValue::Kind::String;
            v.text = readString();
            return v;
        }
        if (m_s.compare(m_pos, 4, "true") == 0) {
            m_pos += 4;
            v.kind = JsonValue::Kind::Bool;
            v.flag = true;
            return v;
        }
        if (m_s.compare(m_pos, 5, "false") == 0) {
            m_pos += 5;
            v.kind = JsonValue::Kind::Bool;
            v.flag = false;
            return v;
        }
        const size_t start = m_pos;
        while (m_pos < m_s.size()
            && (std::isdigit(static_cast<unsigned char>(m_s[m_pos])) || m_s[m_pos] == '-'
                || m_s[m_pos] == '+' || m_s[m_pos] == '.' || m_s[m_pos] == 'e'
                || m_s[m_pos] == 'E')) {
            ++m_pos;
        }
        WFM_CHECK(m_pos > start, "options JSON: expected a value at offset ", start);
        v.kind = JsonValue::Kind::Number;
        v.text = m_s.substr(start, m_pos - start);
        return v;
    }

    const std::string& m_s;
    size_t m_pos = 0;
};

int64_t jsonInt(const std::string& key, const JsonValue& v)
{
    WFM_CHECK(v.kind == JsonValue::Kind::Number, "options JSON: '", key, "' must be a number");
    size_t used = 0;
    int64_t out = 0;
    try {
        out = std::stoll(v.text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    WFM_CHECK(used == v.text.size() && !v.text.empty(), "options JSON: '", key,
        "' must be an integer, got ", v.text);
    return out;
}

double jsonDouble(const std::string& key, const JsonValue& v)
{
    WFM_CHECK(v.kind == JsonValue::Kind::Number, "options JSON: '", key, "' must be a number");
    size_t used = 0;
    double out = 0.0;
    try {
        out = std::stod(v.text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    WFM_CHECK(used == v.text.size() && !v.text.empty(), "options JSON: '", key,
        "' must be a number, got ", v.text);
    return out;
}

std::string formatDouble(double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v); // round-trips exactly
    return buf;
}

} // namespace

// --- SetTransformerOptions --------------------------------------------------------------------

int64_t SetTransformerOptions::effectiveTimeFrequencies() const
{
    return timeFrequencies > 0 ? timeFrequencies : width / 2;
}

void SetTransformerOptions::validate() const
{
    WFM_CHECK(dim >= 1, "set transformer: dim must be >= 1, got ", dim);
    WFM_CHECK(heads >= 1, "set transformer: heads must be >= 1, got ", heads);
    WFM_CHECK(width >= 1 && width % heads == 0, "set transformer: width ", width,
        " must be a positive multiple of heads ", heads);
    WFM_CHECK(blocks >= 0, "set transformer: blocks must be >= 0, got ", blocks);
    WFM_CHECK(mlpWidth >= 1, "set transformer: mlpWidth must be >= 1, got ", mlpWidth);
    WFM_CHECK(dropout >= 0.0 && dropout < 1.0, "set transformer: dropout must be in [0,1), got ",
        dropout);
    WFM_CHECK(attentionDropout >= 0.0 && attentionDropout < 1.0,
        "set transformer: attentionDropout must be in [0,1), got ", attentionDropout);
    WFM_CHECK(numLabels >= 0, "set transformer: numLabels must be >= 0, got ", numLabels);
    WFM_CHECK(condDim >= 0, "set transformer: condDim must be >= 0, got ", condDim);
    WFM_CHECK(timeFrequencies >= 0, "set transformer: timeFrequencies must be >= 0, got ",
        timeFrequencies);
    WFM_CHECK(effectiveTimeFrequencies() >= 1,
        "set transformer: the time embedding needs at least one frequency (width >= 2 or "
        "timeFrequencies >= 1)");
    WFM_CHECK(layerNormEps > 0.0, "set transformer: layerNormEps must be > 0, got ", layerNormEps);
    WFM_CHECK(headInitScale >= 0.0, "set transformer: headInitScale must be >= 0, got ",
        headInitScale);
    WFM_CHECK(chunkSize >= 0, "set transformer: chunkSize must be >= 0, got ", chunkSize);
}

std::string SetTransformerOptions::toJsonString() const
{
    std::ostringstream os;
    os << "{\"dim\":" << dim << ",\"width\":" << width << ",\"blocks\":" << blocks
       << ",\"heads\":" << heads << ",\"mlpWidth\":" << mlpWidth
       << ",\"dropout\":" << formatDouble(dropout)
       << ",\"attentionDropout\":" << formatDouble(attentionDropout)
       << ",\"numLabels\":" << numLabels << ",\"condDim\":" << condDim
       << ",\"timeFrequencies\":" << timeFrequencies
       << ",\"layerNormEps\":" << formatDouble(layerNormEps)
       << ",\"headInitScale\":" << formatDouble(headInitScale)
       << ",\"attention\":\"" << attentionImplName(attention) << "\""
       << ",\"chunkSize\":" << chunkSize
       << ",\"broadcastAttentionDropout\":" << (broadcastAttentionDropout ? "true" : "false")
       << "}";
    return os.str();
}

SetTransformerOptions SetTransformerOptions::fromJsonString(const std::string& json, bool dimUnset)
{
    SetTransformerOptions o;
    using Setter = std::function<void(const std::string&, const JsonValue&)>;
    const std::map<std::string, Setter> setters = {
        { "dim", [&](auto& k, auto& v) { o.dim = jsonInt(k, v); } },
        { "width", [&](auto& k, auto& v) { o.width = jsonInt(k, v); } },
        { "blocks", [&](auto& k, auto& v) { o.blocks = jsonInt(k, v); } },
        { "heads", [&](auto& k, auto& v) { o.heads = jsonInt(k, v); } },
        { "mlpWidth", [&](auto& k, auto& v) { o.mlpWidth = jsonInt(k, v); } },
        { "dropout", [&](auto& k, auto& v) { o.dropout = jsonDouble(k, v); } },
        { "attentionDropout", [&](auto& k, auto& v) { o.attentionDropout = jsonDouble(k, v); } },
        { "numLabels", [&](auto& k, auto& v) { o.numLabels = jsonInt(k, v); } },
        { "condDim", [&](auto& k, auto& v) { o.condDim = jsonInt(k, v); } },
        { "timeFrequencies", [&](auto& k, auto& v) { o.timeFrequencies = jsonInt(k, v); } },
        { "layerNormEps", [&](auto& k, auto& v) { o.layerNormEps = jsonDouble(k, v); } },
        { "headInitScale", [&](auto& k, auto& v) { o.headInitScale = jsonDouble(k, v); } },
        { "attention",
            [&](auto& k, auto& v) {
                WFM_CHECK(v.kind == JsonValue::Kind::String, "options JSON: '", k,
                    "' must be a string");
                o.attention = attentionImplFromString(v.text);
            } },
        { "chunkSize", [&](auto& k, auto& v) { o.chunkSize = jsonInt(k, v); } },
        { "broadcastAttentionDropout",
            [&](auto& k, auto& v) {
                WFM_CHECK(v.kind == JsonValue::Kind::Bool, "options JSON: '", k,
                    "' must be true or false");
                o.broadcastAttentionDropout = v.flag;
            } },
    };
    for (const auto& [key, value] : FlatJsonReader(json).read()) {
        const auto it = setters.find(key);
        WFM_CHECK(it != setters.end(), "options JSON: unknown field '", key, "'");
        it->second(key, value);
    }
    if (dimUnset && o.dim == 0) {
        SetTransformerOptions probe = o;
        probe.dim = 1;
        probe.validate();
        return o;
    }
    o.validate();
    return o;
}

bool SetTransformerOptions::operator==(const SetTransformerOptions& b) const
{
    return dim == b.dim && width == b.width && blocks == b.blocks && heads == b.heads
        && mlpWidth == b.mlpWidth && dropout == b.dropout && attentionDropout == b.attentionDropout
        && numLabels == b.numLabels && condDim == b.condDim
        && timeFrequencies == b.timeFrequencies && layerNormEps == b.layerNormEps
        && headInitScale == b.headInitScale && attention == b.attention
        && chunkSize == b.chunkSize && broadcastAttentionDropout == b.broadcastAttentionDropout;
}

// --- SetTransformerBlock ----------------------------------------------------------------------

SetTransformerBlockImpl::SetTransformerBlockImpl(const SetTransformerOptions& options_)
    : options(options_)
{
    reset();
}

void SetTransformerBlockImpl::reset()
{
    options.validate();
    const int64_t E = options.width;
    attentionNorm = register_module("attentionNorm", makeLayerNorm(E, options.layerNormEps));
    attention = register_module("attention",
        MultiheadAttention(MultiheadAttentionOptions(E, options.heads)
                               .setAttention(AttentionOptions()
                                                 .setImpl(options.attention)
                                                 .setChunkSize(options.chunkSize)
                                                 .setDropout(options.attentionDropout)
                                                 .setBroadcastDropout(
                                                     options.broadcastAttentionDropout))));
    mlpNorm = register_module("mlpNorm", makeLayerNorm(E, options.layerNormEps));
    mlpIn = register_module("mlpIn", makeLinear(E, options.mlpWidth));
    mlpOut = register_module("mlpOut", makeLinear(options.mlpWidth, E));
}

torch::Tensor SetTransformerBlockImpl::forward(
    const torch::Tensor& x, const torch::Tensor& c, const torch::Tensor& keyMask)
{
    // The condition enters the attention branch only; the residual stream stays x (reference).
    auto out = x + attention(normalize(attentionNorm, x + c.unsqueeze(1)), keyMask);
    auto hidden = mlpIn(normalize(mlpNorm, out));
    if (is_training() && options.dropout > 0.0) {
        hidden = DropoutLeakyReluFunction::apply(hidden, options.dropout, kLeakySlope);
    } else {
        // In place: leaky_relu_ keeps its output (not its input) for backward, and that output
        // is also what mlpOut keeps, so one [B,N,mlp] tensor serves both.
        torch::leaky_relu_(hidden, kLeakySlope);
    }
    return out + mlpOut(hidden);
}

// --- SetTransformer ---------------------------------------------------------------------------

SetTransformerImpl::SetTransformerImpl(const SetTransformerOptions& options)
    : m_options(options)
{
    reset();
}

void SetTransformerImpl::reset()
{
    m_options.validate();
    const auto& o = m_options;
    const int64_t E = o.width;
    const int64_t F = o.effectiveTimeFrequencies();
    pointEmbedding = register_module("pointEmbedding", makeLinear(o.dim, E));
    // Reference: omega_k = 2 pi k / E for k < E/2; with an explicit F: omega_k = pi k / F.
    const double step = o.timeFrequencies > 0 ? kPi / static_cast<double>(F)
                                              : 2.0 * kPi / static_cast<double>(E);
    m_frequencies = register_buffer("timeFrequencies",
        torch::arange(F, torch::TensorOptions().dtype(torch::kDouble)).mul(step).to(torch::kFloat));
    timeEmbedding = register_module("timeEmbedding", makeLinear(2 * F, E));
    if (o.numLabels > 0) {
        labelEmbedding = register_module("labelEmbedding", makeLinear(o.numLabels, E));
    } else {
        labelEmbedding = nullptr;
    }
    if (o.condDim > 0) {
        condEmbedding = register_module("condEmbedding", makeLinear(o.condDim, E));
    } else {
        condEmbedding = nullptr;
    }
    blocks = register_module("blocks", torch::nn::ModuleList());
    for (int64_t i = 0; i < o.blocks; ++i) {
        blocks->push_back(SetTransformerBlock(o));
    }
    headNorm = register_module("headNorm", makeLayerNorm(E, o.layerNormEps));
    head = register_module("head", makeLinear(E, o.dim, o.headInitScale));
}

torch::Tensor SetTransformerImpl::forward(const torch::Tensor& x, const torch::Tensor& t,
    const torch::Tensor& mask, const torch::Tensor& labels, const torch::Tensor& cond)
{
    const auto& o = m_options;
    WFM_CHECK(x.defined() && x.dim() == 3 && x.size(2) == o.dim,
        "set transformer: points must be [B,N,", o.dim, "], got ",
        x.defined() ? x.sizes() : torch::IntArrayRef {});
    WFM_CHECK(x.scalar_type() == head->weight.scalar_type(),
        "set transformer: points are ", x.scalar_type(), " but the model is ",
        head->weight.scalar_type());
    const int64_t B = x.size(0), N = x.size(1);
    const auto floatOpts = x.options();

    torch::Tensor live;
    if (mask.defined()) {
        WFM_CHECK(mask.dim() == 2 && mask.size(0) == B && mask.size(1) == N,
            "set transformer: mask must be [B,N] = [", B, ",", N, "], got ", mask.sizes());
        live = (mask.scalar_type() == torch::kBool ? mask : mask > 0).to(x.device());
    } else {
        live = torch::ones({ B, N }, torch::TensorOptions().dtype(torch::kBool).device(x.device()));
    }
    WFM_CHECK(t.defined() && (t.numel() == 1 || (t.dim() == 1 && t.size(0) == B)),
        "set transformer: t must be [B] = [", B, "] or a scalar, got ",
        t.defined() ? t.sizes() : torch::IntArrayRef {});

    // Padded coordinates may hold anything (NaN, huge values); zero them before they reach a
    // matmul, since 0 * NaN would leak through the exact zero attention weights.
    const auto liveCol = live.unsqueeze(-1);
    const auto points = x.masked_fill(liveCol.logical_not(), 0.0);

    // Time embedding: Fourier features [cos(omega t), sin(omega t)] -> Linear.
    auto c = timeEmbedding(layers::timeFeatures(t, B, m_frequencies, floatOpts));

    if (o.numLabels > 0) {
        // The null label (index numLabels) is the zero one-hot, as the reference.
        c = c + labelEmbedding(layers::labelOneHot(labels, B, o.numLabels, floatOpts, "set transformer"));
    } else {
        WFM_CHECK(!labels.defined(), "set transformer: labels given to an unconditional model");
    }
    if (o.condDim > 0) {
        WFM_CHECK(cond.defined() && cond.dim() == 2 && cond.size(0) == B && cond.size(1) == o.condDim,
            "set transformer: cond must be [B,", o.condDim, "] = [", B, ",", o.condDim, "], got ",
            cond.defined() ? cond.sizes() : torch::IntArrayRef {});
        c = c + condEmbedding(cond.to(floatOpts));
    } else {
        WFM_CHECK(!cond.defined(), "set transformer: cond given to a model with condDim = 0");
    }

    // An all-live batch needs no key masking.
    const torch::Tensor keyMask = (B * N > 0 && live.all().item<bool>()) ? torch::Tensor() : live;
    auto h = pointEmbedding(points);
    for (const auto& block : *blocks) {
        h = block->as<SetTransformerBlockImpl>()->forward(h, c, keyMask);
    }
    return head(normalize(headNorm, h)).masked_fill(liveCol.logical_not(), 0.0);
}

int64_t SetTransformerImpl::parameterCount() const
{
    int64_t n = 0;
    for (const auto& p : parameters()) {
        n += p.numel();
    }
    return n;
}

torch::Tensor guidedVelocity(SetTransformer& model, const torch::Tensor& x, const torch::Tensor& t,
    const torch::Tensor& mask, const torch::Tensor& labels, double guidanceScale,
    const torch::Tensor& cond)
{
    const auto& o = model->options();
    WFM_CHECK(o.numLabels > 0, "guidedVelocity: the model has no labels (numLabels = 0)");
    WFM_CHECK(labels.defined(), "guidedVelocity: labels are required");
    WFM_CHECK(x.defined() && x.dim() == 3, "guidedVelocity: points must be [B,N,d], got ",
        x.defined() ? x.sizes() : torch::IntArrayRef {});
    WFM_CHECK(std::isfinite(guidanceScale), "guidedVelocity: guidance scale must be finite");
    const int64_t B = x.size(0);
    WFM_CHECK(labels.dim() == 1 && labels.size(0) == B, "guidedVelocity: labels must be [B] = [",
        B, "], got ", labels.sizes());
    const auto nullLabels = torch::full_like(labels, o.numLabels);
    const auto t2 = t.numel() == 1 ? t : torch::cat({ t, t });
    const auto mask2 = mask.defined() ? torch::cat({ mask, mask }) : torch::Tensor();
    const auto cond2 = cond.defined() ? torch::cat({ cond, cond }) : torch::Tensor();
    const auto v = model->forward(torch::cat({ x, x }), t2, mask2,
        torch::cat({ labels, nullLabels }), cond2);
    const auto vc = v.narrow(0, 0, B);
    const auto vu = v.narrow(0, B, B);
    return vu + guidanceScale * (vc - vu);
}

} // namespace wfm::model
