#pragma once

#include "wfm/data/PointCloudDataset.h"

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

/// Cellular niches of spatial transcriptomics data (DESIGN.md, "The method in one page": a niche
/// is a point cloud in gene-expression space). Given the cells of one or more tissue sections
/// (positions, expression or a precomputed representation, cell types), the niche of a centre
/// cell is the set of feature vectors of its k nearest spatial neighbours within its own section;
/// it is labelled by the centre's cell type.
///
/// Readers (the `csv:` scheme here, `h5ad:` in the io library, `builtin:tissue` in Tissue.h) fill
/// a CellTable and call buildNiches() with options parsed by parseNicheOptions(), so all of them
/// take the same niche options:
///
///   k=16            neighbours per niche (the cloud size; fewer only in a section of <= k cells)
///   rep=pca         features: `pca` = PCA of log1p library-size-normalised expression computed
///                   here; `raw` (or `X`) = the expression values as they are; any other name =
///                   a stored representation (AnnData obsm, e.g. X_pca)
///   pcs=16          number of principal components for rep=pca
///   norm=log1p      expression normalisation before PCA: `log1p` (x -> log1p(1e4 x / rowsum))
///                   or `none` (already normalised data)
///   centers=A,B     only cells of these types are centres (default: every typed cell)
///   include_center=0  1: the centre itself is one of the k points
///   max_centers=0   > 0: a uniformly random subset of that many centres (seeded)
///   seed=0          seed of that subset and of the randomised PCA
/// plus the reader's column options (label=, section=, ...).
namespace wfm::data {

/// Cells of a spatial experiment, the input of niche construction.
struct CellTable
{
    torch::Tensor positions;  ///< [C,s] float32 spatial coordinates, s = 2 or 3
    torch::Tensor sections;   ///< [C] int64 section ids in [0, sectionNames.size()), or undefined
    std::vector<std::string> sectionNames; ///< names of the sections (with sections only)
    torch::Tensor expression; ///< [C,G] float32 counts or normalised values, or undefined
    std::vector<std::string> geneNames;    ///< G names (may be empty)
    std::map<std::string, torch::Tensor> representations; ///< name -> [C,f] float32 (obsm)
    torch::Tensor cellTypes;  ///< [C] int64 in [0, typeNames.size()) or -1 (unknown), or undefined
    std::vector<std::string> typeNames;    ///< cell type names
    std::string name;         ///< short name (a file's stem, "tissue")

    std::int64_t count() const { return positions.defined() ? positions.size(0) : 0; }

    /// Throws DatasetError naming `what` unless the shapes above agree, positions and the
    /// representations are finite, and ids are in range.
    void validate(const std::string& what) const;
};

/// Normalisation of the expression before PCA.
enum class ExpressionNorm {
    Log1p, ///< x -> log1p(1e4 * x / sum_g x) per cell (scanpy's normalize_total + log1p)
    None   ///< used as is
};

/// Niche options (see the namespace comment for their text form).
struct NicheOptions
{
    int k = 16;
    std::string rep = "pca";
    int pcs = 16;
    ExpressionNorm norm = ExpressionNorm::Log1p;
    std::vector<std::string> centers; ///< centre cell types; empty = all
    bool includeCenter = false;
    std::int64_t maxCenters = 0;
    std::uint64_t seed = 0;
};

/// The niche option keys with their defaults as text ({"k","16"}, {"rep","pca"}, ...).
std::map<std::string, std::string> nicheOptionDefaults();

/// Reads the niche keys of `options` (others are ignored: the caller checks them). Throws
/// ConfigError naming `what` for malformed values (k < 1, pcs < 1, unknown norm, ...).
NicheOptions parseNicheOptions(const std::map<std::string, std::string>& options, const std::string& what);

/// k nearest spatial neighbours of each centre within its section (kd-tree, nanoflann), ordered
/// by increasing distance (ties by index). positions [C,s] (s >= 1), sections [C] int64 or
/// undefined (one section), centers [M] int64 cell indices. The centre itself is excluded unless
/// includeCenter (then it is always the first entry, at distance 0). Returns [M,k] int64; rows of
/// centres whose section holds too few cells are padded with -1 at the end.
/// Throws ConfigError for bad shapes, k < 1 or centre indices out of range.
torch::Tensor spatialNeighbors(const torch::Tensor& positions, const torch::Tensor& sections,
    const torch::Tensor& centers, int k, bool includeCenter);

/// Library-size normalisation and log1p: x -> log1p(targetSum * x / sum_g x) per row; rows that
/// sum to 0 stay 0. x [C,G] non-negative. Returns float32. Throws DatasetError naming `what` for
/// a negative or non-finite entry.
torch::Tensor normalizeLog1p(const torch::Tensor& x, const std::string& what, double targetSum = 1e4);

/// Settings of pcaScores().
struct PcaOptions
{
    int components = 16;
    /// Exact method when min(C,G) <= this: eigen-decomposition of the (double precision) Gram
    /// matrix of the centred data on its smaller side. Otherwise randomised SVD (Halko, Martinsson
    /// & Tropp 2011, Alg. 4.4: range finder with `powerIterations` subspace iterations and
    /// `oversample` extra columns), whose leading components match the exact ones to high
    /// accuracy when the spectrum decays, at O(C G (pcs + oversample)) cost per iteration.
    std::int64_t exactMaxDim = 2048;
    int oversample = 10;
    int powerIterations = 4;
    std::uint64_t seed = 0;
};

/// Result of pcaScores().
struct PcaResult
{
    torch::Tensor scores;   ///< [C,p] float32 projections of the centred rows (U S)
    torch::Tensor loadings; ///< [G,p] float32 principal axes (columns of V), unit length
    torch::Tensor variance; ///< [p] float64 variance along each axis (S^2 / (C - 1))
};

/// PCA of x [C,G] (rows are observations): centres the columns and returns the top p =
/// min(components, C, G) components. Sign convention: each loading vector's entry of largest
/// magnitude is positive (deterministic; numpy/sklearn results agree after the same flip).
/// Throws ConfigError for components < 1 or a non-2-D input.
PcaResult pcaScores(const torch::Tensor& x, const PcaOptions& options);

/// The per-cell features the options ask for: [C,f] float32 (see `rep`). Throws ConfigError /
/// DatasetError naming `what` for a missing representation or expression.
torch::Tensor cellFeatures(const CellTable& cells, const NicheOptions& options, const std::string& what);

/// Niches and the cells they come from.
struct NicheSet
{
    PointCloudDataset data;            ///< K niches [K,k,f]; labels = centre types, names = typeNames
    std::vector<std::int64_t> centers; ///< K centre cell indices
    torch::Tensor neighbors;           ///< [K,k] int64 cell indices (-1 padding)
};

/// Builds the niches of `cells` (see the namespace comment). Cells of unknown type (-1) are never
/// centres but can be neighbours. Throws ConfigError for bad options or an unknown centre type
/// (listing the valid ones), DatasetError naming `what` when no cell qualifies as a centre or the
/// cell table is malformed.
NicheSet buildNiches(const CellTable& cells, const NicheOptions& options, const std::string& what);

/// The cell table of a CSV file (CsvTable.h), one row per cell. Column options:
///   x=x y=y z=      coordinate columns (z empty: 2-D)
///   section=        section id column (text or numbers; empty: one section)
///   label=cell_type cell-type column (required; empty cells are unknown types)
///   features=auto   comma-separated expression columns, or `auto`: every numeric column that no
///                   other option uses (and not named "index"/"cell_id"/"cell"/"barcode")
/// Throws ConfigError for a column that does not exist (listing the columns), DatasetError naming
/// the file and line for non-numeric or non-finite coordinates / features.
CellTable readCsvCells(const std::string& path, const std::map<std::string, std::string>& options);

/// `csv:PATH?...`: readCsvCells() then buildNiches(); accepts the column options above and the
/// niche options. Throws ConfigError for an unknown key (listing the valid ones).
PointCloudDataset loadCsvNiches(const std::string& path, const std::map<std::string, std::string>& options);

/// Checks that every key of `options` is in `valid` (a reader's own keys plus the niche keys).
/// Throws ConfigError "SCHEME: unknown option 'KEY' (valid: ...)".
void checkNicheKeys(const std::map<std::string, std::string>& options,
    const std::vector<std::string>& readerKeys, const std::string& scheme);

} // namespace wfm::data
