#include "wfm/io/Letters.h"

#include "wfm/Error.h"
#include "wfm/data/BuiltinFamilies.h"

#include "Registration.h"

#include <torch/torch.h>

#include <ft2build.h>
#include FT_FREETYPE_H

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>

namespace wfm::io {
namespace {

namespace fs = std::filesystem;

/// Owns an FT_Library / FT_Face.
struct LibraryDeleter
{
    void operator()(FT_Library lib) const { FT_Done_FreeType(lib); }
};
struct FaceDeleter
{
    void operator()(FT_Face face) const { FT_Done_Face(face); }
};
using LibraryPtr = std::unique_ptr<std::remove_pointer_t<FT_Library>, LibraryDeleter>;
using FacePtr = std::unique_ptr<std::remove_pointer_t<FT_Face>, FaceDeleter>;

/// Renders `letter` with the face's current size and transform into a grey bitmap; false when
/// the font lacks the glyph or renders nothing.
bool renderGlyph(FT_Face face, char letter, std::vector<std::uint8_t>& pixels, std::int64_t& rows,
    std::int64_t& cols)
{
    const FT_UInt index = FT_Get_Char_Index(face, static_cast<FT_ULong>(letter));
    if (index == 0 || FT_Load_Glyph(face, index, FT_LOAD_DEFAULT | FT_LOAD_NO_BITMAP) != 0
        || FT_Render_Glyph(face->glyph, FT_RENDER_MODE_NORMAL) != 0) {
        return false;
    }
    const FT_Bitmap& bm = face->glyph->bitmap;
    if (bm.pixel_mode != FT_PIXEL_MODE_GRAY || bm.rows == 0 || bm.width == 0) {
        return false;
    }
    rows = bm.rows;
    cols = bm.width;
    pixels.resize(static_cast<std::size_t>(rows * cols));
    const int scale = bm.num_grays > 1 && bm.num_grays != 256 ? 255 / (bm.num_grays - 1) : 1;
    for (std::int64_t r = 0; r < rows; ++r) {
        const unsigned char* src = bm.buffer + r * bm.pitch;
        for (std::int64_t c = 0; c < cols; ++c) {
            pixels[static_cast<std::size_t>(r * cols + c)]
                = static_cast<std::uint8_t>(std::min(255, src[c] * scale));
        }
    }
    return true;
}

std::int64_t parseInt(const std::string& key, const std::string& v)
{
    std::int64_t out = 0;
    const char* end = v.data() + v.size();
    const auto [ptr, ec] = std::from_chars(v.data(), end, out);
    if (v.empty() || ec != std::errc() || ptr != end || out < 0) {
        throw ConfigError(
            "builtin:letters: option '" + key + "' must be an integer >= 0, got '" + v + "'");
    }
    return out;
}

data::PointCloudDataset lettersFromOptions(const std::map<std::string, std::string>& options)
{
    LettersOptions o;
    for (const auto& [key, value] : options) {
        if (key == "count") {
            o.count = parseInt(key, value);
        } else if (key == "seed") {
            o.seed = static_cast<std::uint64_t>(parseInt(key, value));
        } else if (key == "size") {
            o.size = parseInt(key, value);
        } else if (key == "fonts") {
            o.fontFolder = value;
        } else {
            data::parseImageCloudOption(o.image, key, value, "builtin:letters");
        }
    }
    return makeLetters(o);
}

} // namespace

std::vector<std::string> findFonts(const std::string& folder)
{
    std::vector<std::string> out;
    std::error_code ec;
    fs::recursive_directory_iterator it(folder, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        std::string e = it->path().extension().string();
        std::transform(e.begin(), e.end(), e.begin(),
            [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if ((e == ".ttf" || e == ".otf") && it->is_regular_file(ec)) {
            out.push_back(it->path().string());
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

data::PointCloudDataset makeLetters(const LettersOptions& options)
{
    WFM_CHECK(options.count >= 0, "builtin:letters: count must be >= 0, got ", options.count);
    WFM_CHECK(options.size >= 8 && options.size <= 512,
        "builtin:letters: size must be in [8, 512] pixels, got ", options.size);
    FT_Library raw = nullptr;
    if (FT_Init_FreeType(&raw) != 0) {
        throw Error("builtin:letters: cannot initialise FreeType");
    }
    LibraryPtr library(raw);
    // Open every scalable font that has all 26 capitals.
    std::vector<FacePtr> faces;
    for (const std::string& file : findFonts(options.fontFolder)) {
        FT_Face face = nullptr;
        if (FT_New_Face(library.get(), file.c_str(), 0, &face) != 0) {
            continue;
        }
        FacePtr owned(face);
        if (!FT_IS_SCALABLE(face)) {
            continue;
        }
        bool complete = true;
        for (char c = 'A'; c <= 'Z' && complete; ++c) {
            complete = FT_Get_Char_Index(face, static_cast<FT_ULong>(c)) != 0;
        }
        if (complete && FT_Set_Pixel_Sizes(face, 0, static_cast<FT_UInt>(options.size)) == 0) {
            faces.push_back(std::move(owned));
        }
    }
    if (faces.empty()) {
        throw ConfigError("builtin:letters: no scalable fonts with the letters A-Z under '"
            + options.fontFolder
            + "' (install e.g. fonts-dejavu-core or fonts-liberation2, or pass fonts=DIR)");
    }
    const auto fontCount = static_cast<std::int64_t>(faces.size());
    const std::int64_t perLetter = options.count > 0 ? options.count : fontCount;
    // Which font (and which distortion) each sample of a letter uses: a seeded permutation of the
    // fonts, repeated; repeats beyond the first round get a random transform.
    data::Rng pick(options.seed, 0x666f6e74); // "font"
    std::vector<std::int64_t> order(static_cast<std::size_t>(fontCount));
    for (std::int64_t i = 0; i < fontCount; ++i) {
        order[static_cast<std::size_t>(i)] = i;
    }
    if (options.count > 0) {
        for (std::int64_t i = fontCount - 1; i > 0; --i) {
            std::swap(order[static_cast<std::size_t>(i)],
                order[pick.below(static_cast<std::uint64_t>(i + 1))]);
        }
    }
    std::vector<std::vector<float>> clouds;
    std::vector<std::int64_t> labels;
    std::vector<std::uint8_t> pixels;
    for (std::int64_t s = 0; s < perLetter; ++s) {
        FT_Face face = faces[static_cast<std::size_t>(order[static_cast<std::size_t>(s % fontCount)])].get();
        data::Rng distort(options.seed, 0x10000 + static_cast<std::uint64_t>(s));
        if (s >= fontCount) {
            // Slant, small rotation and aspect change: FreeType applies them to the outline.
            const double angle = distort.uniform(-0.15, 0.15);
            const double shear = distort.uniform(-0.25, 0.25);
            const double aspect = distort.uniform(0.8, 1.2);
            const double a = std::cos(angle) * aspect;
            const double b = -std::sin(angle) + shear;
            const double c = std::sin(angle) * aspect;
            const double d = std::cos(angle);
            FT_Matrix m;
            m.xx = static_cast<FT_Fixed>(a * 65536.0);
            m.xy = static_cast<FT_Fixed>(b * 65536.0);
            m.yx = static_cast<FT_Fixed>(c * 65536.0);
            m.yy = static_cast<FT_Fixed>(d * 65536.0);
            FT_Set_Transform(face, &m, nullptr);
        } else {
            FT_Set_Transform(face, nullptr, nullptr);
        }
        for (char letter = 'A'; letter <= 'Z'; ++letter) {
            std::int64_t rows = 0;
            std::int64_t cols = 0;
            if (!renderGlyph(face, letter, pixels, rows, cols)) {
                continue;
            }
            data::Rng rng(options.seed, static_cast<std::uint64_t>(s * 26 + (letter - 'A')));
            clouds.push_back(data::imageToCloud(pixels.data(), rows, cols, options.image, rng));
            labels.push_back(letter - 'A');
        }
        FT_Set_Transform(face, nullptr, nullptr);
    }
    std::vector<std::string> names;
    for (char letter = 'A'; letter <= 'Z'; ++letter) {
        names.emplace_back(1, letter);
    }
    data::PointCloudDataset data
        = data::datasetFromFlatClouds(clouds, 2, labels, names, "builtin:letters");
    data.name = "letters";
    return data;
}

namespace detail {

void registerFontReaders()
{
    const LettersOptions d;
    data::registerBuiltinFamily("letters", lettersFromOptions,
        { { "count", "0" }, { "seed", "0" }, { "size", std::to_string(d.size) }, { "points", "0" },
            { "threshold", "0.5" }, { "jitter", "0" }, { "fonts", d.fontFolder } },
        "capital letters A-Z rasterised from the installed fonts (FreeType), one cloud per font "
        "and letter (count=N per letter adds distorted copies), labelled A..Z");
}

std::string fontReaderDescription()
{
    FT_Library lib = nullptr;
    FT_Int major = 0;
    FT_Int minor = 0;
    FT_Int patch = 0;
    if (FT_Init_FreeType(&lib) == 0) {
        FT_Library_Version(lib, &major, &minor, &patch);
        FT_Done_FreeType(lib);
    }
    return wfm::detail::concat("letters (FreeType ", major, ".", minor, ")");
}

} // namespace detail
} // namespace wfm::io
