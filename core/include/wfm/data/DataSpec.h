#pragma once

#include "wfm/data/PointCloudDataset.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

/// Data specifications: one string that names a family of point clouds, as the CLI's --data
/// and the GUI's data panel take it.
///
///   builtin:NAME[?key=value&...]   a synthetic family (BuiltinFamilies.h), e.g.
///                                  builtin:rings?count=500&seed=3
///   npy:PATH                       one array [K,N,d]: K clouds of N points each, all live
///   npz:PATH                       an archive (np.savez / np.savez_compressed) holding either
///                                   - points [K,N,d] and optionally weights [K,N] (weight 0 marks
///                                     padding; the live weights of each cloud are kept, divided
///                                     by their sum; without weights every point is live), or
///                                   - points [total,d] and sizes [K] (clouds stored one after
///                                     the other, uniform weights);
///                                  and optionally
///                                   - labels [K] (integer dtype) with values 0..L-1, and
///                                     label_names: L names, either a numpy unicode array
///                                     ('<U..', 1-D) or a uint8 array of the UTF-8 names joined
///                                     by '\n' (a trailing '\n' is allowed); without label_names
///                                     the names are "0", "1", ..., "max label";
///                                   - cond [K,c] (floating) continuous conditioning vectors.
///                                  Other members are ignored, even of dtypes the reader does not
///                                  support (object arrays, strings); the members above must be
///                                  readable.
///   idx:FILE[?...] / idx:FOLDER    MNIST-style IDX images (plain or gzip) as 2-D clouds of their
///                                  foreground pixels, labelled from the label file (Idx.h)
///   csv:PATH[?...]                 cellular niches of a cell table, one row per cell (Niches.h:
///                                  column options x, y, z, section, label, features and the
///                                  niche options k, rep, pcs, norm, centers, ...)
///   PATH.npy / PATH.npz            (no scheme) the same as npy:PATH / npz:PATH.
///
/// Everything after the first '?' is the option list, so file paths cannot contain '?'.
/// File schemes take no options. More schemes (meshes, AnnData) register themselves with
/// registerDataScheme() from libraries that depend on core.
namespace wfm::data {

/// A parsed data specification.
struct DataSpec
{
    std::string scheme; ///< "builtin", "csv", "idx", "npy", "npz" or a registered scheme
    std::string path;   ///< builtin family name or file path
    std::map<std::string, std::string> options; ///< key=value options after '?'
    std::string text;   ///< the original specification (for messages and `source`)
};

/// Splits `spec` into scheme, path and options. Throws ConfigError naming the spec for an
/// unknown scheme (listing the valid ones), an empty path, or malformed options (an empty
/// key, a pair without '=', a repeated key). Does not check option keys (loadPointClouds does).
DataSpec parseDataSpec(const std::string& spec);

/// Loads the dataset `spec` names and validates it; its `source` is the spec text and its
/// `name` the builtin family or the file's stem.
/// Throws ConfigError for a malformed spec, an unknown builtin name or option key (listing the
/// valid ones), DatasetError naming the file for unreadable files, missing or malformed arrays,
/// and invalid data (non-finite coordinates, empty clouds, labels out of range).
PointCloudDataset loadPointClouds(const std::string& spec);
PointCloudDataset loadPointClouds(const DataSpec& spec);

/// Reads an .npz archive in one of the layouts above (see loadPointClouds for errors).
PointCloudDataset readPointCloudNpz(const std::string& path);

/// Reads an .npy array [K,N,d] (any floating or integer dtype) as K clouds of N live points.
PointCloudDataset readPointCloudNpy(const std::string& path);

/// Layouts writePointCloudNpz can write.
enum class NpzLayout {
    Padded, ///< points [K,Nmax,d] float32 + weights [K,Nmax] float32
    Packed  ///< points [total,d] float32 + sizes [K] int64 (uniform weights only)
};

/// Writes `data` as an .npz archive readPointCloudNpz (and numpy) reads back, with labels [K]
/// int64 and label_names as the uint8 '\n'-joined form, and cond [K,c] when present.
/// Throws ConfigError for the packed layout with non-uniform weights or a label name containing
/// '\n'; DatasetError for a build without .npz support; wfm::Error when writing fails.
void writePointCloudNpz(const std::string& path, const PointCloudDataset& data,
    NpzLayout layout = NpzLayout::Padded);

/// A loader for an extra scheme: gets the parsed spec, returns the dataset (validated after).
using DataSchemeLoader = std::function<PointCloudDataset(const DataSpec&)>;

/// Registers (or replaces) the loader of `scheme` (letters, digits, '_' and '-'; not one of
/// builtin, csv, idx, npy, npz); `help` is a one-line description for dataSchemes(). Thread safe.
/// Throws ConfigError for an invalid or reserved scheme name or an empty loader.
void registerDataScheme(const std::string& scheme, DataSchemeLoader loader, const std::string& help);

/// The schemes loadPointClouds understands, with one line of help each.
std::map<std::string, std::string> dataSchemes();

} // namespace wfm::data
