#pragma once

#include "wfm/data/DataSpec.h"
#include "wfm/data/ImageClouds.h"
#include "wfm/data/PointCloudDataset.h"

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

/// IDX files (MNIST, Fashion-MNIST, EMNIST; plain or gzip-compressed) and the `idx:` data
/// scheme, which turns each image into the 2-D cloud of its foreground pixels (ImageClouds.h).
///
///   idx:IMAGES_FILE[?labels=LABELS_FILE&threshold=0.5|otsu&count=N&jitter=0&points=0&seed=0]
///   idx:FOLDER[?split=train|test&subset=NAME&...]
///
/// Options: labels (label file; by default the images file's name with "images"/"idx3"
/// replaced by "labels"/"idx1" when that file exists), threshold (a number in [0,1) or "otsu";
/// default 0.5), count (the first N images; 0 = all), jitter (pixel widths, default 0), points
/// (max points per cloud, 0 = all), seed (jitter and subsampling), split (folders: train or test,
/// default train), subset (folders with several EMNIST subsets: e.g. "balanced"), classes
/// (auto | fashion | numbers: label names; auto uses an EMNIST "*-mapping.txt" next to the files,
/// the Fashion-MNIST class names when the path contains "fashion" and labels are 0..9, and the
/// numbers "0".."L-1" otherwise), transpose (auto | 0 | 1: EMNIST stores images transposed;
/// auto transposes files whose name starts with "emnist").
/// A folder is searched for train-images-idx3-ubyte / t10k-images-idx3-ubyte (also "test-" and
/// the ".idx3-ubyte" spelling, each optionally ".gz") and emnist-SUBSET-{train,test}-images-...
namespace wfm::data {

/// Reads an IDX file (gzip-compressed when it starts with 1f 8b) into a CPU tensor of its shape:
/// uint8 -> uint8, int8 -> int8, int16 -> int16, int32 -> int32, float32, float64.
/// Throws DatasetError "PATH: problem" for a missing file, wrong magic, dims whose product
/// overflows or exceeds the data, truncated or corrupt gzip data.
torch::Tensor readIdx(const std::string& path);

/// Options of readIdxImages().
struct IdxImageOptions
{
    std::string imagesPath;               ///< images [N,H,W] uint8
    std::string labelsPath;               ///< labels [N] (any integer type); empty: no labels
    ImageCloudOptions image;              ///< threshold, jitter, max points
    std::int64_t count = 0;               ///< the first `count` images; 0 = all
    std::uint64_t seed = 0;               ///< image i uses Rng(seed, i)
    bool transpose = false;               ///< swap rows and columns (EMNIST)
    std::vector<std::string> labelNames;  ///< empty: "0".."max label"
};

/// The images of an IDX file as clouds (see ImageClouds.h), with labels when a label file is
/// given. Throws DatasetError naming the file for unreadable files, images that are not
/// [N,H,W] uint8, labels that are not 1-D integers or disagree in count, negative labels, or
/// fewer label names than labels; ConfigError for bad options.
PointCloudDataset readIdxImages(const IdxImageOptions& options);

/// The ten Fashion-MNIST class names in label order (T-shirt/top, Trouser, ..., Ankle boot).
std::vector<std::string> fashionMnistClassNames();

/// Loads an `idx:` data spec (see above). Throws ConfigError for unknown options or values and
/// a folder without the standard files (listing what it looked for), DatasetError as
/// readIdxImages.
PointCloudDataset loadIdxSpec(const DataSpec& spec);

} // namespace wfm::data
