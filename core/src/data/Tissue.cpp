#include "wfm/data/Tissue.h"

#include "wfm/Error.h"
#include "wfm/data/BuiltinFamilies.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <mutex>
#include <numbers>

namespace wfm::data {
namespace {

constexpr int kTypes = 8;
constexpr int kDomains = 5;
constexpr double kSide = 1000.0;

// Type mixture of each domain (rows: layer_1..layer_4, vascular; columns: tissueTypeNames()).
constexpr double kMixture[kDomains][kTypes] = {
    { 0.55, 0.08, 0.02, 0.01, 0.16, 0.06, 0.08, 0.04 },
    { 0.10, 0.50, 0.10, 0.02, 0.10, 0.06, 0.08, 0.04 },
    { 0.02, 0.10, 0.50, 0.12, 0.08, 0.08, 0.06, 0.04 },
    { 0.01, 0.02, 0.10, 0.45, 0.08, 0.24, 0.06, 0.04 },
    { 0.03, 0.03, 0.03, 0.03, 0.20, 0.05, 0.16, 0.47 },
};

int drawType(Rng& rng, int domain)
{
    double u = rng.uniform();
    for (int t = 0; t < kTypes - 1; ++t) {
        u -= kMixture[domain][t];
        if (u < 0) {
            return t;
        }
    }
    return kTypes - 1;
}

/// Gamma(shape, 1) for shape >= 1 (Marsaglia & Tsang 2000).
double gammaDraw(Rng& rng, double shape)
{
    const double d = shape - 1.0 / 3.0;
    const double c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
        const double x = rng.normal();
        double v = 1.0 + c * x;
        if (v <= 0.0) {
            continue;
        }
        v = v * v * v;
        const double u = rng.uniform();
        if (u < 1.0 - 0.0331 * x * x * x * x || std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) {
            return d * v;
        }
    }
}

/// Poisson(lambda): inversion by multiplication for small lambda, PTRS (Hoermann 1993) above.
std::int64_t poissonDraw(Rng& rng, double lambda)
{
    if (lambda <= 0.0) {
        return 0;
    }
    if (lambda < 10.0) {
        const double limit = std::exp(-lambda);
        std::int64_t k = 0;
        double prod = rng.uniform();
        while (prod > limit) {
            ++k;
            prod *= rng.uniform();
        }
        return k;
    }
    const double slam = std::sqrt(lambda);
    const double loglam = std::log(lambda);
    const double b = 0.931 + 2.53 * slam;
    const double a = -0.059 + 0.02483 * b;
    const double invalpha = 1.1239 + 1.1328 / (b - 3.4);
    const double vr = 0.9277 - 3.6224 / (b - 2.0);
    for (;;) {
        const double U = rng.uniform() - 0.5;
        const double V = rng.uniform();
        const double us = 0.5 - std::fabs(U);
        const auto k = static_cast<std::int64_t>(std::floor((2.0 * a / us + b) * U + lambda + 0.43));
        if (us >= 0.07 && V <= vr) {
            return k;
        }
        if (k < 0 || (us < 0.013 && V > us)) {
            continue;
        }
        if (std::log(V) + std::log(invalpha) - std::log(a / (us * us) + b)
            <= -lambda + static_cast<double>(k) * loglam - std::lgamma(static_cast<double>(k) + 1.0)) {
            return k;
        }
    }
}

struct Patch
{
    double x, y, r;
};

/// Domain of a point of section with boundary phase `phase` and vascular patches.
int domainAt(double x, double y, double phase, const std::vector<Patch>& patches)
{
    for (const Patch& p : patches) {
        if ((x - p.x) * (x - p.x) + (y - p.y) * (y - p.y) <= p.r * p.r) {
            return kDomains - 1;
        }
    }
    const double wave = 2.0 * std::numbers::pi * 1.5 * x / kSide;
    for (int j = 0; j < 3; ++j) {
        const double boundary = kSide * (j + 1) / 4.0 + 40.0 * std::sin(wave + phase + j);
        if (y < boundary) {
            return j;
        }
    }
    return 3;
}

std::int64_t parseIntOpt(const std::string& key, const std::string& text)
{
    std::int64_t v = 0;
    const auto res = std::from_chars(text.data(), text.data() + text.size(), v);
    if (res.ec != std::errc() || res.ptr != text.data() + text.size()) {
        throw ConfigError("builtin:tissue: option '" + key + "' must be an integer, got '" + text + "'");
    }
    return v;
}

} // namespace

std::vector<std::string> tissueTypeNames()
{
    return { "L2_neuron", "L4_neuron", "L5_neuron", "L6_neuron", "astrocyte", "oligodendrocyte",
        "microglia", "endothelial" };
}

std::vector<std::string> tissueDomainNames()
{
    return { "layer_1", "layer_2", "layer_3", "layer_4", "vascular" };
}

SimulatedTissue simulateTissue(const TissueOptions& o)
{
    WFM_CHECK(o.cells >= 100 && o.cells <= 10'000'000, "builtin:tissue: cells must be in [100, 1e7], got ", o.cells);
    WFM_CHECK(o.sections >= 1 && o.sections <= o.cells / 50, "builtin:tissue: sections must be in [1, cells/50], got ",
        o.sections);
    WFM_CHECK(o.genes >= 16 && o.genes <= 5000, "builtin:tissue: genes must be in [16, 5000], got ", o.genes);
    WFM_CHECK(std::isfinite(o.depth) && o.depth > 0, "builtin:tissue: depth must be > 0");
    const std::int64_t C = o.cells;
    const std::int64_t G = o.genes;

    SimulatedTissue out;
    CellTable& cells = out.cells;
    cells.positions = torch::empty({ C, 2 }, torch::kFloat);
    cells.sections = torch::empty({ C }, torch::kLong);
    cells.cellTypes = torch::empty({ C }, torch::kLong);
    cells.expression = torch::empty({ C, G }, torch::kFloat);
    out.domains = torch::empty({ C }, torch::kLong);
    auto* pos = cells.positions.data_ptr<float>();
    auto* sec = cells.sections.data_ptr<std::int64_t>();
    auto* typ = cells.cellTypes.data_ptr<std::int64_t>();
    auto* dom = out.domains.data_ptr<std::int64_t>();
    auto* expr = cells.expression.data_ptr<float>();

    // Gene programmes: baseline means and per-type fold changes.
    Rng geneRng(o.seed, 0x6E7E);
    std::vector<double> base(static_cast<std::size_t>(G));
    for (double& b : base) {
        b = geneRng.uniform(0.2, 2.0);
    }
    std::vector<std::vector<double>> typeMean(kTypes, base);
    const std::int64_t block = std::max<std::int64_t>(3, G / kTypes);
    for (int t = 0; t < kTypes; ++t) {
        for (std::int64_t j = 0; j < block; ++j) {
            const auto g = static_cast<std::size_t>((t * (G / kTypes) + j) % G);
            typeMean[t][g] *= geneRng.uniform(6.0, 15.0);
        }
    }
    // Pan-neuronal genes shared by the four neuron types (the last three genes).
    for (int t = 0; t < 4; ++t) {
        for (std::int64_t g = G - 3; g < G; ++g) {
            typeMean[t][static_cast<std::size_t>(g)] *= 4.0;
        }
    }
    std::vector<double> typeTotal(kTypes, 0.0);
    double baseTotal = 0.0;
    for (const double b : base) {
        baseTotal += b;
    }

    std::int64_t c0 = 0;
    for (std::int64_t s = 0; s < o.sections; ++s) {
        const std::int64_t n = C / o.sections + (s < C % o.sections ? 1 : 0);
        Rng rng(o.seed, static_cast<std::uint64_t>(s) + 1);
        const double phase = rng.uniform(0.0, 2.0 * std::numbers::pi);
        std::vector<Patch> patches(static_cast<std::size_t>(std::max<std::int64_t>(2, n / 500)));
        for (Patch& p : patches) {
            p = { rng.uniform(0, kSide), rng.uniform(0, kSide), rng.uniform(60.0, 110.0) };
        }
        struct Seed
        {
            double x, y;
            int domain, type;
        };
        std::vector<Seed> seeds(static_cast<std::size_t>(std::max<std::int64_t>(1, n / 25)));
        for (Seed& sd : seeds) {
            sd.x = rng.uniform(0, kSide);
            sd.y = rng.uniform(0, kSide);
            sd.domain = domainAt(sd.x, sd.y, phase, patches);
            sd.type = drawType(rng, sd.domain);
        }
        for (std::int64_t i = 0; i < n; ++i) {
            const std::int64_t c = c0 + i;
            const double x = rng.uniform(0, kSide);
            const double y = rng.uniform(0, kSide);
            const int d = domainAt(x, y, phase, patches);
            int nearest = -1;
            double best = 0.0;
            for (std::size_t j = 0; j < seeds.size(); ++j) {
                if (seeds[j].domain != d) {
                    continue;
                }
                const double dd = (x - seeds[j].x) * (x - seeds[j].x) + (y - seeds[j].y) * (y - seeds[j].y);
                if (nearest < 0 || dd < best) {
                    best = dd;
                    nearest = static_cast<int>(j);
                }
            }
            const double u = rng.uniform();
            const int t = (nearest >= 0 && u < 0.7) ? seeds[static_cast<std::size_t>(nearest)].type
                                                    : drawType(rng, d);
            pos[2 * c] = static_cast<float>(x);
            pos[2 * c + 1] = static_cast<float>(y);
            sec[c] = s;
            typ[c] = t;
            dom[c] = d;
            const double library = std::exp(0.3 * rng.normal() - 0.045) * o.depth / baseTotal;
            for (std::int64_t g = 0; g < G; ++g) {
                const double mean = typeMean[t][static_cast<std::size_t>(g)] * library;
                const double lambda = mean * gammaDraw(rng, 4.0) / 4.0;
                expr[c * G + g] = static_cast<float>(poissonDraw(rng, lambda));
            }
        }
        c0 += n;
        cells.sectionNames.push_back("section_" + std::to_string(s));
    }
    cells.typeNames = tissueTypeNames();
    for (std::int64_t g = 0; g < G; ++g) {
        cells.geneNames.push_back("gene_" + std::to_string(g));
    }
    cells.name = "tissue";
    return out;
}

PointCloudDataset makeTissue(const TissueOptions& o)
{
    const SimulatedTissue t = simulateTissue(o);
    NicheOptions no;
    no.k = o.k;
    no.pcs = o.pcs;
    no.seed = o.seed;
    NicheSet set = buildNiches(t.cells, no, "builtin:tissue");
    set.data.name = "tissue";
    set.data.source = "builtin:tissue";
    return set.data;
}

void registerCoreExtraFamilies()
{
    static std::once_flag once;
    std::call_once(once, [] {
        const TissueOptions d;
        std::map<std::string, std::string> keys = { { "cells", std::to_string(d.cells) },
            { "sections", std::to_string(d.sections) }, { "genes", std::to_string(d.genes) },
            { "k", std::to_string(d.k) }, { "pcs", std::to_string(d.pcs) }, { "seed", "0" },
            { "centers", "" }, { "include_center", "0" }, { "max_centers", "0" } };
        registerBuiltinFamily(
            "tissue",
            [](const std::map<std::string, std::string>& options) {
                TissueOptions o;
                auto get = [&](const char* key) -> const std::string* {
                    const auto it = options.find(key);
                    return it == options.end() ? nullptr : &it->second;
                };
                if (const auto* v = get("cells")) {
                    o.cells = parseIntOpt("cells", *v);
                }
                if (const auto* v = get("sections")) {
                    o.sections = parseIntOpt("sections", *v);
                }
                if (const auto* v = get("genes")) {
                    o.genes = parseIntOpt("genes", *v);
                }
                const NicheOptions no = parseNicheOptions(options, "builtin:tissue");
                o.k = no.k;
                o.pcs = no.pcs;
                o.seed = no.seed;
                const SimulatedTissue t = simulateTissue(o);
                NicheSet set = buildNiches(t.cells, no, "builtin:tissue");
                return set.data;
            },
            keys,
            "simulated spatial transcriptomics: niches (k nearest cells, PCA of counts) of 8 cell "
            "types over layered tissue sections, labelled by the centre cell's type");
    });
}

} // namespace wfm::data
