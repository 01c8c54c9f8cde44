#pragma once

#include "wfm/data/Niches.h"
#include "wfm/data/PointCloudDataset.h"

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

/// `builtin:tissue`: a simulated spatial transcriptomics experiment whose niches carry real
/// structure, for demos, tests and the niche classifier metric (NicheClassifier.h).
///
/// Model (all draws from data::Rng(seed, stream), so a seed gives the same tissue everywhere):
///  - `sections` square sections of side 1000 (micrometres), `cells / sections` cells each, at
///    uniformly random positions.
///  - Five spatial domains per section: four cortical-like layers stacked along y whose
///    boundaries are sine waves with a section-specific phase, and circular "vascular" patches
///    (radius 60-110) scattered over them.
///  - Eight cell types (tissueTypeNames()). Each domain has its own type mixture. Types cluster
///    into homotypic patches: a sparse set of patch seeds (one per ~25 cells) draw a type from
///    their domain's mixture, and a cell takes the type of its nearest seed in the same domain
///    with probability 0.7 and otherwise draws from its domain's mixture.
///  - Expression of `genes` genes: a baseline mean per gene (0.2 to 2), and per type a marker
///    programme of genes / 8 genes (at least 3; overlapping programmes share a few genes) whose
///    means are multiplied by 6 to 15. Counts are negative binomial (a Gamma(shape 4)-Poisson
///    mixture) around the type mean times a log-normal library size (sigma 0.3) of scale
///    `depth / genes`.
namespace wfm::data {

/// Options of builtin:tissue.
struct TissueOptions
{
    std::int64_t cells = 6000; ///< total number of cells (>= 100)
    std::int64_t sections = 2; ///< number of sections (>= 1)
    std::int64_t genes = 64;   ///< number of genes (16 to 5000)
    int k = 16;                ///< niche size
    int pcs = 16;              ///< principal components of the niche features
    std::uint64_t seed = 0;    ///< random seed
    double depth = 400.0;      ///< mean total counts per cell (before the type programme)
};

/// Names of the eight cell types in label order.
std::vector<std::string> tissueTypeNames();

/// Names of the five domains: layer_1 .. layer_4, vascular.
std::vector<std::string> tissueDomainNames();

/// The simulated cells before niche construction.
struct SimulatedTissue
{
    CellTable cells;        ///< positions [C,2], sections, expression counts [C,G], types
    torch::Tensor domains;  ///< [C] int64 domain of each cell (tissueDomainNames())
};

/// Simulates the tissue described above. Throws ConfigError for options out of range.
SimulatedTissue simulateTissue(const TissueOptions& options);

/// Niches of the simulated tissue: k nearest neighbours within the section (centre excluded),
/// features = PCA (pcs components) of log1p-normalised counts, label = centre type, named
/// "tissue". Throws ConfigError as simulateTissue().
PointCloudDataset makeTissue(const TissueOptions& options);

/// Registers `builtin:tissue` with registerBuiltinFamily() (options cells, sections, genes, k,
/// pcs, seed, plus centers, include_center, max_centers). Idempotent and thread safe; called by
/// BuiltinFamilies.cpp before any lookup, so the family is always reachable.
void registerCoreExtraFamilies();

} // namespace wfm::data
