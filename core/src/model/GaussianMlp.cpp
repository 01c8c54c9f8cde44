#include "wfm/model/GaussianMlp.h"

#include "wfm/Error.h"
#include "wfm/model/Attention.h"

#include "Layers.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cmath>

namespace wfm::model {

namespace {

using layers::makeLinear;

constexpr double kPi = 3.14159265358979323846;

template <typename T>
T jsonField(const nlohmann::json& j, const std::string& key)
{
    try {
        return j.get<T>();
    } catch (const nlohmann::json::exception&) {
        throw ConfigError("Gaussian MLP options JSON: '" + key + "' has the wrong type");
    }
}

} // namespace

// --- options ---------------------------------------------------------------------------------

void GaussianMlpOptions::validate() const
{
    WFM_CHECK(dim >= 1, "Gaussian MLP: dim must be >= 1, got ", dim);
    WFM_CHECK(width >= 1, "Gaussian MLP: width must be >= 1, got ", width);
    WFM_CHECK(blocks >= 0, "Gaussian MLP: blocks must be >= 0, got ", blocks);
    WFM_CHECK(numLabels >= 0, "Gaussian MLP: numLabels must be >= 0, got ", numLabels);
    WFM_CHECK(timeFrequencies >= 1, "Gaussian MLP: timeFrequencies must be >= 1, got ",
        timeFrequencies);
    WFM_CHECK(dropout >= 0.0 && dropout < 1.0, "Gaussian MLP: dropout must be in [0,1), got ",
        dropout);
    WFM_CHECK(std::isfinite(headInitScale) && headInitScale >= 0.0,
        "Gaussian MLP: headInitScale must be >= 0, got ", headInitScale);
    WFM_CHECK(layerNormEps > 0.0, "Gaussian MLP: layerNormEps must be > 0, got ", layerNormEps);
}

std::string GaussianMlpOptions::toJsonString() const
{
    nlohmann::json j;
    j["dim"] = dim;
    j["width"] = width;
    j["blocks"] = blocks;
    j["numLabels"] = numLabels;
    j["timeFrequencies"] = timeFrequencies;
    j["dropout"] = dropout;
    j["headInitScale"] = headInitScale;
    j["layerNormEps"] = layerNormEps;
    return j.dump();
}

GaussianMlpOptions GaussianMlpOptions::fromJsonString(const std::string& text)
{
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw ConfigError(std::string("Gaussian MLP options JSON: ") + e.what());
    }
    WFM_CHECK(j.is_object(), "Gaussian MLP options JSON must be an object");
    GaussianMlpOptions o;
    for (const auto& [key, value] : j.items()) {
        if (key == "dim") {
            o.dim = jsonField<int64_t>(value, key);
        } else if (key == "width") {
            o.width = jsonField<int64_t>(value, key);
        } else if (key == "blocks") {
            o.blocks = jsonField<int64_t>(value, key);
        } else if (key == "numLabels") {
            o.numLabels = jsonField<int64_t>(value, key);
        } else if (key == "timeFrequencies") {
            o.timeFrequencies = jsonField<int64_t>(value, key);
        } else if (key == "dropout") {
            o.dropout = jsonField<double>(value, key);
        } else if (key == "headInitScale") {
            o.headInitScale = jsonField<double>(value, key);
        } else if (key == "layerNormEps") {
            o.layerNormEps = jsonField<double>(value, key);
        } else {
            throw ConfigError("Gaussian MLP options JSON: unknown field '" + key + "'");
        }
    }
    o.validate();
    return o;
}

bool GaussianMlpOptions::operator==(const GaussianMlpOptions& b) const
{
    return dim == b.dim && width == b.width && blocks == b.blocks && numLabels == b.numLabels
        && timeFrequencies == b.timeFrequencies && dropout == b.dropout
        && headInitScale == b.headInitScale && layerNormEps == b.layerNormEps;
}

// --- module ----------------------------------------------------------------------------------

GaussianMlpImpl::GaussianMlpImpl(const GaussianMlpOptions& options)
    : m_options(options)
{
    reset();
}

void GaussianMlpImpl::reset()
{
    m_options.validate();
    const auto& o = m_options;
    const int64_t d = o.dim;
    const int64_t T = d * (d + 1) / 2;
    const int64_t E = o.width;
    const torch::Tensor tril = torch::tril_indices(d, d, 0, torch::kLong);
    m_trilRows = register_buffer("trilRows", tril[0].contiguous());
    m_trilCols = register_buffer("trilCols", tril[1].contiguous());
    // Row-major tril index of (i, j), i >= j: i (i + 1) / 2 + j.
    const torch::Tensor r = torch::arange(d, torch::kLong).unsqueeze(1).expand({ d, d });
    const torch::Tensor c = r.t();
    const torch::Tensor hi = torch::maximum(r, c), lo = torch::minimum(r, c);
    m_symIndex = register_buffer("symIndex", (torch::div(hi * (hi + 1), 2, "floor") + lo).reshape({ -1 }).contiguous());
    m_frequencies = register_buffer("timeFrequencies",
        torch::arange(o.timeFrequencies, torch::kDouble).mul(kPi).to(torch::kFloat));
    inputEmbedding = register_module("inputEmbedding", makeLinear(d + T, E));
    timeEmbedding = register_module("timeEmbedding", makeLinear(2 * o.timeFrequencies, E));
    if (o.numLabels > 0) {
        labelEmbedding = register_module("labelEmbedding", makeLinear(o.numLabels, E));
    } else {
        labelEmbedding = nullptr;
    }
    norms = register_module("norms", torch::nn::ModuleList());
    hidden = register_module("hidden", torch::nn::ModuleList());
    outputs = register_module("outputs", torch::nn::ModuleList());
    for (int64_t i = 0; i < o.blocks; ++i) {
        norms->push_back(torch::nn::LayerNorm(torch::nn::LayerNormOptions({ E }).eps(o.layerNormEps)));
        hidden->push_back(makeLinear(E, E));
        outputs->push_back(makeLinear(E, E));
    }
    headNorm = register_module(
        "headNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({ E }).eps(o.layerNormEps)));
    meanHead = register_module("meanHead", makeLinear(E, d, o.headInitScale));
    covHead = register_module("covHead", makeLinear(E, T, o.headInitScale));
}

GaussianVelocity GaussianMlpImpl::forward(const torch::Tensor& m, const torch::Tensor& S,
    const torch::Tensor& t, const torch::Tensor& labels)
{
    const auto& o = m_options;
    const int64_t d = o.dim;
    WFM_CHECK(m.defined() && m.dim() == 2 && m.size(1) == d, "Gaussian MLP: means must be [B,", d,
        "], got ", m.defined() ? m.sizes() : torch::IntArrayRef {});
    const int64_t B = m.size(0);
    WFM_CHECK(S.defined() && S.dim() == 3 && S.size(0) == B && S.size(1) == d && S.size(2) == d,
        "Gaussian MLP: covariances must be [", B, ",", d, ",", d, "], got ",
        S.defined() ? S.sizes() : torch::IntArrayRef {});
    WFM_CHECK(m.scalar_type() == meanHead->weight.scalar_type()
            && S.scalar_type() == meanHead->weight.scalar_type(),
        "Gaussian MLP: inputs are ", m.scalar_type(), "/", S.scalar_type(), " but the model is ",
        meanHead->weight.scalar_type());
    WFM_CHECK(t.defined() && (t.numel() == 1 || (t.dim() == 1 && t.size(0) == B)),
        "Gaussian MLP: t must be [B] = [", B, "] or a scalar, got ",
        t.defined() ? t.sizes() : torch::IntArrayRef {});
    const auto floatOpts = m.options();

    const auto tri = S.index({ torch::indexing::Slice(), m_trilRows, m_trilCols }); // [B,T]
    auto h = inputEmbedding(torch::cat({ m, tri }, 1));

    auto c = timeEmbedding(layers::timeFeatures(t, B, m_frequencies, floatOpts));
    if (o.numLabels > 0) {
        c = c + labelEmbedding(layers::labelOneHot(labels, B, o.numLabels, floatOpts, "Gaussian MLP"));
    } else {
        WFM_CHECK(!labels.defined(), "Gaussian MLP: labels given to an unconditional model");
    }

    for (int64_t i = 0; i < o.blocks; ++i) {
        auto* norm = norms[i]->as<torch::nn::LayerNormImpl>();
        auto u = norm->forward((h + c).to(norm->weight.scalar_type()));
        u = torch::silu(hidden[i]->as<torch::nn::LinearImpl>()->forward(u));
        if (o.dropout > 0.0) {
            u = torch::dropout(u, o.dropout, is_training());
        }
        h = h + outputs[i]->as<torch::nn::LinearImpl>()->forward(u);
    }
    const auto z = layers::normalize(headNorm, h);
    GaussianVelocity out;
    out.dm = meanHead(z);
    const auto lower = covHead(z); // [B,T]
    // Entry (i,j) of W is lower-triangle entry (max(i,j), min(i,j)): symmetric by construction.
    out.W = lower.index_select(1, m_symIndex).view({ B, d, d });
    return out;
}

int64_t GaussianMlpImpl::parameterCount() const
{
    int64_t n = 0;
    for (const auto& p : parameters()) {
        n += p.numel();
    }
    return n;
}

GaussianVelocity guidedGaussianVelocity(GaussianMlp& model, const torch::Tensor& m,
    const torch::Tensor& S, const torch::Tensor& t, const torch::Tensor& labels, double gamma)
{
    const auto& o = model->options();
    WFM_CHECK(o.numLabels > 0, "guidedGaussianVelocity: the model has no labels (numLabels = 0)");
    WFM_CHECK(labels.defined(), "guidedGaussianVelocity: labels are required");
    WFM_CHECK(std::isfinite(gamma), "guidedGaussianVelocity: guidance scale must be finite");
    WFM_CHECK(m.defined() && m.dim() == 2 && S.defined() && S.dim() == 3,
        "guidedGaussianVelocity: means must be [B,d] and covariances [B,d,d]");
    const int64_t B = m.size(0);
    WFM_CHECK(labels.dim() == 1 && labels.size(0) == B, "guidedGaussianVelocity: labels must be [B] = [",
        B, "], got ", labels.sizes());
    const auto nullLabels = torch::full_like(labels, o.numLabels);
    torch::Tensor tt = t.reshape({ -1 });
    tt = tt.numel() == 1 ? tt.expand({ B }) : tt;
    const GaussianVelocity both = model->forward(torch::cat({ m, m }, 0), torch::cat({ S, S }, 0),
        torch::cat({ tt, tt }, 0), torch::cat({ labels, nullLabels }, 0));
    GaussianVelocity out;
    const auto dmC = both.dm.narrow(0, 0, B), dmU = both.dm.narrow(0, B, B);
    const auto wC = both.W.narrow(0, 0, B), wU = both.W.narrow(0, B, B);
    out.dm = dmU + gamma * (dmC - dmU);
    out.W = wU + gamma * (wC - wU);
    return out;
}

} // namespace wfm::model
