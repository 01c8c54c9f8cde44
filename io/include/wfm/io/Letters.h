#pragma once

#include "wfm/data/ImageClouds.h"
#include "wfm/data/PointCloudDataset.h"

#include <cstdint>
#include <string>
#include <vector>

/// The built-in family `letters` (FreeType): the capital letters A-Z rasterised from every
/// scalable font installed, each glyph image turned into the 2-D cloud of its foreground pixels
/// (wfm/data/ImageClouds.h), labelled "A".."Z". Many fonts give natural variation.
///
///   builtin:letters[?count=0&seed=0&size=48&points=0&threshold=0.5&jitter=0&fonts=DIR]
///
/// count: clouds per letter; 0 = one per font. When count exceeds the number of fonts, fonts are
/// reused with a random slant / rotation / aspect (FreeType transform) drawn from the seed; when
/// it is smaller, a seeded random subset of fonts is used. size: raster height in pixels (em
/// size). fonts: the folder searched recursively for .ttf/.otf files (default /usr/share/fonts).
namespace wfm::io {

/// Options of makeLetters().
struct LettersOptions
{
    std::int64_t count = 0;          ///< clouds per letter; 0 = one per font
    std::uint64_t seed = 0;          ///< font choice, distortions, jitter, subsampling
    std::int64_t size = 48;          ///< pixel size of the em square
    data::ImageCloudOptions image;   ///< threshold, jitter, max points
    std::string fontFolder = "/usr/share/fonts";
};

/// Scalable fonts (.ttf, .otf) under `folder`, recursively, sorted by path.
std::vector<std::string> findFonts(const std::string& folder);

/// The letters dataset (26 * count clouds, or 26 * fonts). Throws ConfigError when no usable
/// font is found (naming the folder) or for size outside [8, 512], count < 0.
data::PointCloudDataset makeLetters(const LettersOptions& options);

} // namespace wfm::io
