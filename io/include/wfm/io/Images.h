#pragma once

#include "wfm/data/ImageClouds.h"
#include "wfm/data/PointCloudDataset.h"

#include <cstdint>
#include <string>
#include <vector>

/// PNG images as point clouds (libpng), reachable as the data scheme
///
///   png:PATH[?threshold=0.5|otsu&invert=auto|0|1&jitter=0&points=0&count=0&seed=0]
///
/// PATH is a .png file or a folder searched recursively (hidden folders skipped); in a folder the
/// first sub-folder below PATH names each image's label (class/img.png). Each image becomes the
/// 2-D cloud of its foreground pixels (wfm/data/ImageClouds.h: [-1,1] frame, y up). Intensity:
/// the alpha channel when the image has one that is not fully opaque (the shape is what is
/// drawn), otherwise the grey level. invert: 1 takes 255 - intensity (dark ink on light paper),
/// auto inverts images whose border is mostly bright. count keeps the first N images (in sorted
/// path order), 0 all; seed drives jitter and subsampling (image i uses Rng(seed, i)).
namespace wfm::io {

/// An 8-bit grey image, row 0 at the top.
struct GrayImage
{
    std::int64_t height = 0;
    std::int64_t width = 0;
    std::vector<std::uint8_t> pixels; ///< [height * width], 255 = ink / opaque
    bool fromAlpha = false;           ///< the intensity is the alpha channel
};

/// Reads a PNG file as intensities (alpha when translucent, otherwise grey, see above).
/// Throws DatasetError "PATH: problem" for a missing, non-PNG, truncated or corrupt file, or an
/// image larger than 2^26 pixels.
GrayImage readPngGray(const std::string& path);

/// Whether to invert intensities.
enum class InvertMode { Auto, No, Yes };

/// Options of readPngImages().
struct PngCloudOptions
{
    data::ImageCloudOptions image;
    InvertMode invert = InvertMode::Auto;
    std::int64_t count = 0;
    std::uint64_t seed = 0;
};

/// A .png file or a folder of them as a dataset. Throws DatasetError naming the offending file,
/// or a folder without .png files.
data::PointCloudDataset readPngImages(const std::string& path, const PngCloudOptions& options);

/// Whether auto inversion would invert this image: the mean intensity of its border pixels is
/// above 127.
bool hasBrightBorder(const GrayImage& image);

} // namespace wfm::io
