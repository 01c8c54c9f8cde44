#pragma once

#include "wfm/data/PointCloudDataset.h"

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

/// Images as point clouds: the foreground pixels of a grey image become a 2-D cloud. Shared by
/// the IDX reader (core) and the PNG and glyph readers (io library), so every image source
/// gives clouds in the same frame.
namespace wfm::data {

/// How foreground pixels are chosen and placed.
struct ImageCloudOptions
{
    /// Foreground: intensity / 255 > threshold (intensity 255 = ink). Ignored with otsu.
    double threshold = 0.5;
    /// Per-image Otsu threshold instead of `threshold`.
    bool otsu = false;
    /// Each point is moved by U[-jitter/2, jitter/2] pixel widths per axis (1 spreads the
    /// points uniformly over their pixels); 0 puts them at the pixel centres.
    double jitter = 0.0;
    /// At most this many points per cloud (a uniform subset without replacement, in pixel
    /// order); 0 keeps all.
    std::int64_t maxPoints = 0;
};

/// Otsu's threshold of 8-bit intensities: the t in [0,255] maximising the between-class
/// variance of {v <= t} and {v > t}. Returns 127 for an empty or constant image.
int otsuThreshold(const std::uint8_t* pixels, std::size_t count);

/// The foreground of a grey image [height,width] (row-major, row 0 at the top, 255 = ink) as a
/// flat list of 2-D points x0,y0,x1,y1,...: pixel (r,c) maps to its centre
/// x = (2c + 1 - width) / m, y = (height - 2r - 1) / m with m = max(height,width), so the image
/// fits [-1,1]^2, keeps its aspect ratio and y points up. When no pixel passes the threshold
/// the pixels of maximal intensity are taken, so every image gives at least one point. `rng`
/// drives the jitter and the subsampling. Throws ConfigError for a non-positive size, a
/// threshold outside [0,1), jitter < 0 or maxPoints < 0.
std::vector<float> imageToCloud(const std::uint8_t* pixels, std::int64_t height,
    std::int64_t width, const ImageCloudOptions& options, Rng& rng);

/// A dataset from flat clouds (each a multiple of `dim` floats, at least one point) with uniform
/// weights, padded to the largest cloud. Labels are set when `labels` is not empty (one per
/// cloud, values in [0, labelNames.size())). Throws DatasetError naming `what` for an empty
/// cloud or list, ConfigError for mismatched label counts.
PointCloudDataset datasetFromFlatClouds(const std::vector<std::vector<float>>& clouds,
    std::int64_t dim, const std::vector<std::int64_t>& labels,
    const std::vector<std::string>& labelNames, const std::string& what);

/// Parses the image options shared by the image schemes (idx:, png:, builtin:letters) from data
/// spec text: threshold ("otsu" or a number in [0,1)), jitter (>= 0), points (max points,
/// >= 0). `where` prefixes error messages ("idx:PATH"). Throws ConfigError for malformed values.
void parseImageCloudOption(ImageCloudOptions& options, const std::string& key,
    const std::string& value, const std::string& where);

} // namespace wfm::data
