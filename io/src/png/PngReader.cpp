#include "wfm/io/Images.h"

#include "wfm/Error.h"
#include "wfm/data/DataSpec.h"

#include "Registration.h"

#include <torch/torch.h>

#include <png.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <map>

namespace wfm::io {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kMaxPixels = std::uint64_t(1) << 26;

bool isPng(const fs::path& p)
{
    std::string e = p.extension().string();
    std::transform(e.begin(), e.end(), e.begin(),
        [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return e == ".png";
}

/// Frees a png_image on every path out of readPngGray.
struct ImageGuard
{
    png_image* image;
    ~ImageGuard() { png_image_free(image); }
};

std::uint64_t parseUnsigned(const std::string& where, const std::string& key, const std::string& v)
{
    std::uint64_t out = 0;
    const char* end = v.data() + v.size();
    const auto [ptr, ec] = std::from_chars(v.data(), end, out);
    if (v.empty() || ec != std::errc() || ptr != end) {
        throw ConfigError(where + ": option '" + key + "' must be an integer >= 0, got '" + v + "'");
    }
    return out;
}

data::PointCloudDataset loadPngSpec(const data::DataSpec& spec)
{
    const std::string where = "png:" + spec.path;
    PngCloudOptions o;
    for (const auto& [key, value] : spec.options) {
        if (key == "threshold" || key == "jitter" || key == "points") {
            data::parseImageCloudOption(o.image, key, value, where);
        } else if (key == "invert") {
            if (value == "auto") {
                o.invert = InvertMode::Auto;
            } else if (value == "0" || value == "1") {
                o.invert = value == "1" ? InvertMode::Yes : InvertMode::No;
            } else {
                throw ConfigError(where + ": option 'invert' must be auto, 0 or 1, got '" + value + "'");
            }
        } else if (key == "count") {
            o.count = static_cast<std::int64_t>(parseUnsigned(where, key, value));
        } else if (key == "seed") {
            o.seed = parseUnsigned(where, key, value);
        } else {
            throw ConfigError(where + ": unknown option '" + key
                + "' (valid: count, invert, jitter, points, seed, threshold)");
        }
    }
    return readPngImages(spec.path, o);
}

} // namespace

GrayImage readPngGray(const std::string& path)
{
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
        throw DatasetError(path + ": no such file");
    }
    png_image image;
    std::memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    ImageGuard guard { &image };
    if (png_image_begin_read_from_file(&image, path.c_str()) == 0) {
        throw DatasetError(path + ": cannot read the PNG (" + image.message + ")");
    }
    const std::uint64_t pixels = std::uint64_t(image.width) * image.height;
    if (image.width == 0 || image.height == 0 || pixels > kMaxPixels) {
        throw DatasetError(wfm::detail::concat(path, ": image of ", image.width, "x", image.height,
            " pixels is empty or too large (at most ", kMaxPixels, " pixels)"));
    }
    const bool alpha = (image.format & PNG_FORMAT_FLAG_ALPHA) != 0;
    image.format = alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY;
    std::vector<std::uint8_t> buffer(PNG_IMAGE_SIZE(image));
    if (png_image_finish_read(&image, nullptr, buffer.data(), 0, nullptr) == 0) {
        throw DatasetError(path + ": cannot decode the PNG (" + image.message + ")");
    }
    GrayImage out;
    out.height = image.height;
    out.width = image.width;
    out.pixels.resize(static_cast<std::size_t>(pixels));
    if (alpha) {
        bool translucent = false;
        for (std::size_t i = 0; i < out.pixels.size(); ++i) {
            translucent = translucent || buffer[2 * i + 1] != 255;
        }
        out.fromAlpha = translucent;
        for (std::size_t i = 0; i < out.pixels.size(); ++i) {
            out.pixels[i] = buffer[2 * i + (translucent ? 1 : 0)];
        }
    } else {
        out.pixels = std::move(buffer);
    }
    return out;
}

bool hasBrightBorder(const GrayImage& image)
{
    double sum = 0.0;
    std::int64_t n = 0;
    for (std::int64_t r = 0; r < image.height; ++r) {
        for (std::int64_t c = 0; c < image.width; ++c) {
            if (r == 0 || c == 0 || r == image.height - 1 || c == image.width - 1) {
                sum += image.pixels[static_cast<std::size_t>(r * image.width + c)];
                ++n;
            }
        }
    }
    return n > 0 && sum / double(n) > 127.0;
}

data::PointCloudDataset readPngImages(const std::string& path, const PngCloudOptions& options)
{
    WFM_CHECK(options.count >= 0, "readPngImages: count must be >= 0");
    std::error_code ec;
    const fs::path root(path);
    if (!fs::exists(root, ec)) {
        throw DatasetError(path + ": no such file or folder");
    }
    const bool isFolder = fs::is_directory(root, ec);
    std::vector<std::pair<std::string, fs::path>> files; // relative path, path
    if (isFolder) {
        fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
        for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            const fs::path& p = it->path();
            if (p.filename().string().rfind('.', 0) == 0) {
                if (it->is_directory(ec)) {
                    it.disable_recursion_pending();
                }
                continue;
            }
            if (it->is_regular_file(ec) && isPng(p)) {
                files.emplace_back(fs::relative(p, root, ec).generic_string(), p);
            }
        }
        std::sort(files.begin(), files.end());
        if (files.empty()) {
            throw DatasetError(path + ": no .png files in the folder");
        }
    } else {
        files.emplace_back(root.filename().string(), root);
    }
    if (options.count > 0 && static_cast<std::int64_t>(files.size()) > options.count) {
        files.resize(static_cast<std::size_t>(options.count));
    }
    std::vector<std::vector<float>> clouds;
    std::vector<std::string> labelOf;
    bool anyLabel = false;
    for (std::size_t i = 0; i < files.size(); ++i) {
        GrayImage image = readPngGray(files[i].second.string());
        const bool invert = options.invert == InvertMode::Yes
            || (options.invert == InvertMode::Auto && hasBrightBorder(image));
        if (invert) {
            for (auto& v : image.pixels) {
                v = static_cast<std::uint8_t>(255 - v);
            }
        }
        data::Rng rng(options.seed, i);
        clouds.push_back(
            data::imageToCloud(image.pixels.data(), image.height, image.width, options.image, rng));
        const std::size_t slash = files[i].first.find('/');
        labelOf.push_back(slash == std::string::npos ? "." : files[i].first.substr(0, slash));
        anyLabel = anyLabel || slash != std::string::npos;
    }
    std::vector<std::int64_t> labels;
    std::vector<std::string> names;
    if (isFolder && anyLabel) {
        std::map<std::string, std::int64_t> index;
        for (const auto& l : labelOf) {
            index.emplace(l, 0);
        }
        for (auto& [name, id] : index) {
            id = static_cast<std::int64_t>(names.size());
            names.push_back(name);
        }
        for (const auto& l : labelOf) {
            labels.push_back(index.at(l));
        }
    }
    data::PointCloudDataset data = data::datasetFromFlatClouds(clouds, 2, labels, names, path);
    data.name = isFolder ? (root.filename().empty() ? root.parent_path().filename().string()
                                                    : root.filename().string())
                         : root.stem().string();
    return data;
}

namespace detail {

void registerImageReaders()
{
    data::registerDataScheme("png", loadPngSpec,
        "png:PATH[?threshold=0.5|otsu&invert=auto|0|1&jitter=0&points=0&count=0] a .png file or a "
        "folder of them (labels from sub-folders) as 2-D clouds of foreground pixels");
}

std::string imageReaderDescription()
{
    return std::string("png (libpng ") + PNG_LIBPNG_VER_STRING + ")";
}

} // namespace detail
} // namespace wfm::io
