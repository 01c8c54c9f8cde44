#pragma once

#include "wfm/data/Niches.h"
#include "wfm/data/PointCloudDataset.h"

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

/// AnnData (.h5ad) files through the HDF5 C library: the pieces niche construction needs (X, obs
/// columns, obsm arrays, var names), and the `h5ad:` data scheme
///
///   h5ad:PATH?k=16&rep=X_pca&label=cell_type&section=slice_id&pcs=16&centers=A,B&spatial=spatial
///
/// (spatial = the obsm key of the coordinates, default "spatial"; label default "cell_type";
/// section default none; rep = pca (PCA of X computed by the engine, the default), raw / X, or an
/// obsm key; the other niche options as in wfm/data/Niches.h).
///
/// Layouts read: every version of Python `anndata` from 0.7 on (and older files of the same form):
///  - X: a dense 2-D dataset, or a sparse group (data / indices / indptr with a `shape` attribute
///    and encoding-type csr_matrix / csc_matrix, or the older h5sparse_format / h5sparse_shape
///    attributes); float32/float64/integer values.
///  - obs: a dataframe group (anndata >= 0.7; index column named by the `_index` attribute) whose
///    columns are numeric datasets, string datasets (variable or fixed length), booleans,
///    nullable integer / boolean groups (values + mask), or categoricals, either as a group with
///    `categories` and `codes` (anndata >= 0.8) or as integer codes with the categories in
///    `obs/__categories/<col>` (anndata 0.7); or a compound dataset (anndata <= 0.6) with an
///    `index` field, whose categorical columns hold codes and keep their categories in
///    `uns/<col>_categories`.
///  - obsm: a group of dense 2-D datasets [n_obs, d] (a dataset stored [d, n_obs] is transposed),
///    or a compound dataset whose fields are arrays (anndata <= 0.6).
///  - var: as obs; only its index (the gene names) is read.
/// All HDF5 access is serialised by one mutex (Debian's HDF5 is not thread safe) and HDF5's own
/// error printing is turned off while reading; HDF5 failures become wfm::DatasetError.
namespace wfm::io {

/// One obs column.
struct AnnDataColumn
{
    enum class Kind { Numeric, Text, Categorical };
    Kind kind = Kind::Numeric;
    std::vector<double> numbers;         ///< Numeric: values (NaN for missing)
    std::vector<std::string> texts;      ///< Text: values
    std::vector<std::int64_t> codes;     ///< Categorical: codes in [0, categories.size()) or -1
    std::vector<std::string> categories; ///< Categorical: names

    std::size_t size() const;
    /// Per-row text: category names (empty for -1), texts, or numbers ("3", "2.5", "" for NaN).
    std::vector<std::string> asText() const;
};

/// What readAnnData() loads.
struct AnnDataReadOptions
{
    bool readX = true;              ///< load X densely (can be large: n_obs * n_vars floats)
    bool allObsm = true;            ///< load every dense obsm array ...
    std::vector<std::string> obsm;  ///< ... or only these keys (when allObsm is false)
};

/// The contents of an .h5ad file.
struct AnnData
{
    std::string path;
    std::int64_t nObs = 0;
    std::int64_t nVars = 0;
    torch::Tensor X;                           ///< [n_obs,n_vars] float32, or undefined
    std::vector<std::string> obsNames;         ///< obs index
    std::vector<std::string> varNames;         ///< var index (gene names)
    std::map<std::string, AnnDataColumn> obs;  ///< obs columns by name
    std::vector<std::string> obsColumnOrder;   ///< column names in file order
    std::map<std::string, torch::Tensor> obsm; ///< name -> [n_obs,d] float32
    std::string layout;                        ///< "anndata 0.8+", "anndata 0.7" or "legacy"
};

/// Reads `path`. Throws DatasetError naming the file, the HDF5 path of the field
/// (e.g. "/obs/cell_type/codes") and the problem: a file that is not HDF5, missing X or obs,
/// shapes that disagree with n_obs / n_vars, a bad sparse indptr (wrong length, decreasing, not
/// ending at nnz), column indices out of range, category codes out of range, NaN or inf in X or
/// obsm, unsupported dtypes, or a dense X beyond 2^31 entries.
AnnData readAnnData(const std::string& path, const AnnDataReadOptions& options = {});

/// The cell table of an AnnData object: positions from obsm[spatialKey] (2 or 3 columns),
/// sections and cell types from obs columns (any kind; categories keep their order, other values
/// are sorted; missing -> unknown), expression = X when read, representations = obsm.
/// Throws ConfigError for a missing key or column (listing the valid ones).
data::CellTable annDataCells(const AnnData& ad, const std::string& spatialKey,
    const std::string& labelColumn, const std::string& sectionColumn);

/// `h5ad:PATH?...` as described above. Throws ConfigError for unknown options.
data::PointCloudDataset loadAnnDataNiches(const std::string& path, const std::map<std::string, std::string>& options);

/// "x.y.z" of the HDF5 library in use.
std::string hdf5Version();

} // namespace wfm::io
