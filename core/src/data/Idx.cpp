#include "wfm/data/Idx.h"

#include "wfm/Error.h"

#include "IdxParser.h"

#include <torch/torch.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace wfm::data {
namespace {

namespace fs = std::filesystem;

/// Largest IDX payload accepted (the full EMNIST byclass training set is about 550 MB).
constexpr std::size_t kMaxIdxBytes = std::size_t(1) << 32;

std::string readFileBytes(const std::string& path)
{
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        throw DatasetError(path + ": is a folder, not an IDX file");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw DatasetError(path + ": cannot open (" + std::strerror(errno) + ")");
    }
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    in.seekg(0, std::ios::beg);
    if (size < 0) {
        throw DatasetError(path + ": cannot read");
    }
    if (static_cast<std::uint64_t>(size) > kMaxIdxBytes) {
        throw DatasetError(detail::concat(path, ": file too large (", size, " bytes)"));
    }
    std::string bytes(static_cast<std::size_t>(size), '\0');
    in.read(bytes.data(), size);
    if (in.gcount() != size) {
        throw DatasetError(path + ": read error");
    }
    return bytes;
}

/// The decompressed IDX bytes of a file and their parsed header.
struct IdxBuffer
{
    std::string bytes;
    idx::IdxHeader header;
    const std::uint8_t* data() const { return reinterpret_cast<const std::uint8_t*>(bytes.data()); }
};

IdxBuffer loadIdxBuffer(const std::string& path)
{
    IdxBuffer buf;
    std::string raw = readFileBytes(path);
    const auto* rawData = reinterpret_cast<const std::uint8_t*>(raw.data());
    std::string error;
    if (idx::isGzip(rawData, raw.size())) {
        // Peek at the header first so that a file claiming absurd dims fails before inflating.
        std::string prefix;
        if (!idx::gunzip(rawData, raw.size(), prefix, 4 + 4 * 255, error, /*stopAtMax=*/true)) {
            throw DatasetError(path + ": " + error);
        }
        idx::IdxHeader h;
        if (!idx::parseIdxHeaderOnly(reinterpret_cast<const std::uint8_t*>(prefix.data()),
                prefix.size(), h, error)) {
            throw DatasetError(path + ": " + error + " (after gzip decompression)");
        }
        const std::size_t needed = h.dataOffset + h.dataBytes;
        if (h.dataBytes > kMaxIdxBytes) {
            throw DatasetError(detail::concat(path, ": dims need ", h.dataBytes,
                " bytes, more than the reader accepts (", kMaxIdxBytes, ")"));
        }
        // Allow trailing bytes, but never inflate far beyond what the header describes.
        if (!idx::gunzip(rawData, raw.size(), buf.bytes, needed + (1 << 20), error)) {
            throw DatasetError(path + ": " + error);
        }
    } else {
        buf.bytes = std::move(raw);
    }
    if (!idx::parseIdxHeader(buf.data(), buf.bytes.size(), buf.header, error)) {
        throw DatasetError(path + ": " + error);
    }
    return buf;
}

torch::ScalarType scalarTypeOf(idx::IdxType t)
{
    switch (t) {
    case idx::IdxType::UInt8:
        return torch::kByte;
    case idx::IdxType::Int8:
        return torch::kChar;
    case idx::IdxType::Int16:
        return torch::kShort;
    case idx::IdxType::Int32:
        return torch::kInt;
    case idx::IdxType::Float32:
        return torch::kFloat;
    case idx::IdxType::Float64:
        return torch::kDouble;
    }
    return torch::kByte;
}

torch::Tensor toTensor(const IdxBuffer& buf)
{
    const idx::IdxHeader& h = buf.header;
    std::vector<std::int64_t> shape(h.dims.begin(), h.dims.end());
    torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(scalarTypeOf(h.type)));
    auto* dst = static_cast<std::uint8_t*>(t.data_ptr());
    const std::uint8_t* src = buf.data() + h.dataOffset;
    const std::size_t item = idx::itemSize(h.type);
    if (item == 1) {
        std::memcpy(dst, src, h.dataBytes);
    } else {
        // Big-endian on disk; the host is little-endian (as the NPY reader assumes).
        for (std::uint64_t i = 0; i < h.count; ++i) {
            for (std::size_t b = 0; b < item; ++b) {
                dst[i * item + b] = src[i * item + (item - 1 - b)];
            }
        }
    }
    return t;
}

bool iequalsPrefix(const std::string& s, const std::string& prefix)
{
    if (s.size() < prefix.size()) {
        return false;
    }
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) {
            return false;
        }
    }
    return true;
}

bool containsNoCase(std::string s, const std::string& lowerNeedle)
{
    std::transform(s.begin(), s.end(), s.begin(),
        [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s.find(lowerNeedle) != std::string::npos;
}

std::string replaceAll(std::string s, const std::string& from, const std::string& to)
{
    for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
        s.replace(at, from.size(), to);
    }
    return s;
}

bool isFile(const fs::path& p)
{
    std::error_code ec;
    return fs::is_regular_file(p, ec);
}

/// The label file that goes with an images file, or "" when none exists.
std::string siblingLabels(const std::string& imagesPath)
{
    const fs::path p(imagesPath);
    const std::string name = p.filename().string();
    if (name.find("images") == std::string::npos) {
        return {};
    }
    std::string guess = replaceAll(replaceAll(name, "images", "labels"), "idx3", "idx1");
    for (const std::string& candidate : { guess, guess + ".gz" }) {
        const fs::path q = p.parent_path() / candidate;
        if (isFile(q)) {
            return q.string();
        }
    }
    if (guess.size() > 3 && guess.substr(guess.size() - 3) == ".gz") {
        const fs::path q = p.parent_path() / guess.substr(0, guess.size() - 3);
        if (isFile(q)) {
            return q.string();
        }
    }
    return {};
}

/// EMNIST's "<prefix>-mapping.txt": lines "label code" (code = Unicode code point).
std::vector<std::string> emnistMapping(const std::string& imagesPath)
{
    const fs::path p(imagesPath);
    const std::string name = p.filename().string();
    const std::size_t cut = std::min(name.find("-train-"), name.find("-test-"));
    if (!iequalsPrefix(name, "emnist-") || cut == std::string::npos) {
        return {};
    }
    std::ifstream in(p.parent_path() / (name.substr(0, cut) + "-mapping.txt"));
    if (!in) {
        return {};
    }
    std::vector<std::string> names;
    long label = 0;
    long code = 0;
    while (in >> label >> code) {
        if (label < 0 || label > 4096 || code <= 0 || code > 0x10ffff) {
            return {};
        }
        if (names.size() <= static_cast<std::size_t>(label)) {
            names.resize(static_cast<std::size_t>(label) + 1);
        }
        std::string utf8;
        const auto cp = static_cast<std::uint32_t>(code);
        if (cp < 0x80) {
            utf8 += static_cast<char>(cp);
        } else if (cp < 0x800) {
            utf8 += static_cast<char>(0xc0 | (cp >> 6));
            utf8 += static_cast<char>(0x80 | (cp & 0x3f));
        } else {
            utf8 += static_cast<char>(0xe0 | (cp >> 12));
            utf8 += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            utf8 += static_cast<char>(0x80 | (cp & 0x3f));
        }
        names[static_cast<std::size_t>(label)] = utf8;
    }
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (names[i].empty()) {
            names[i] = std::to_string(i);
        }
    }
    return names;
}

struct FolderFiles
{
    std::string images;
    std::string labels;
};

FolderFiles findInFolder(const std::string& folder, const std::string& split,
    const std::string& subset, const std::string& where)
{
    const fs::path dir(folder);
    std::vector<std::string> prefixes = split == "train" ? std::vector<std::string> { "train" }
                                                         : std::vector<std::string> { "t10k", "test" };
    std::vector<std::string> tried;
    if (subset.empty()) {
        for (const std::string& pre : prefixes) {
            for (const char* sep : { "-images-idx3-ubyte", "-images.idx3-ubyte" }) {
                for (const char* gz : { "", ".gz" }) {
                    const fs::path p = dir / (pre + sep + gz);
                    tried.push_back(p.filename().string());
                    if (isFile(p)) {
                        return { p.string(), siblingLabels(p.string()) };
                    }
                }
            }
        }
    }
    // EMNIST: emnist-SUBSET-SPLIT-images-idx3-ubyte[.gz]
    const std::string tail = "-" + split + "-images-idx3-ubyte";
    std::set<std::string> subsets;
    std::map<std::string, std::string> files;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (!iequalsPrefix(name, "emnist-")) {
            continue;
        }
        const std::size_t at = name.find(tail);
        if (at == std::string::npos || at <= 7) {
            continue;
        }
        const std::string rest = name.substr(at + tail.size());
        if (!rest.empty() && rest != ".gz") {
            continue;
        }
        const std::string sub = name.substr(7, at - 7);
        subsets.insert(sub);
        files[sub] = entry.path().string();
    }
    if (!subset.empty()) {
        const auto it = files.find(subset);
        if (it == files.end()) {
            std::string have;
            for (const auto& s : subsets) {
                have += (have.empty() ? "" : ", ") + s;
            }
            throw ConfigError(where + ": no EMNIST subset '" + subset + "' for split '" + split
                + "' (found: " + (have.empty() ? "none" : have) + ")");
        }
        return { it->second, siblingLabels(it->second) };
    }
    if (subsets.size() == 1) {
        return { files.begin()->second, siblingLabels(files.begin()->second) };
    }
    if (subsets.size() > 1) {
        std::string have;
        for (const auto& s : subsets) {
            have += (have.empty() ? "" : ", ") + s;
        }
        throw ConfigError(where + ": several EMNIST subsets (" + have + "); pick one with ?subset=NAME");
    }
    std::string list;
    for (const auto& t : tried) {
        list += (list.empty() ? "" : ", ") + t;
    }
    throw ConfigError(where + ": no IDX images for split '" + split + "' (looked for " + list
        + " and emnist-SUBSET" + tail + "[.gz])");
}

std::int64_t parseCount(const std::string& where, const std::string& key, const std::string& v)
{
    std::int64_t out = 0;
    const char* end = v.data() + v.size();
    const auto [ptr, ec] = std::from_chars(v.data(), end, out);
    if (v.empty() || ec != std::errc() || ptr != end || out < 0) {
        throw ConfigError(where + ": option '" + key + "' must be an integer >= 0, got '" + v + "'");
    }
    return out;
}

} // namespace

torch::Tensor readIdx(const std::string& path)
{
    return toTensor(loadIdxBuffer(path));
}

std::vector<std::string> fashionMnistClassNames()
{
    return { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
        "Bag", "Ankle boot" };
}

PointCloudDataset readIdxImages(const IdxImageOptions& options)
{
    WFM_CHECK(options.count >= 0, "readIdxImages: count must be >= 0, got ", options.count);
    const IdxBuffer images = loadIdxBuffer(options.imagesPath);
    const idx::IdxHeader& h = images.header;
    if (h.type != idx::IdxType::UInt8 || h.dims.size() != 3) {
        std::string dims;
        for (const auto d : h.dims) {
            if (!dims.empty()) {
                dims += 'x';
            }
            dims += std::to_string(d);
        }
        throw DatasetError(options.imagesPath + ": expected images [N,H,W] of uint8, got "
            + (dims.empty() ? "a scalar" : dims) + " of " + idx::typeName(h.type));
    }
    std::int64_t n = static_cast<std::int64_t>(h.dims[0]);
    const auto H = static_cast<std::int64_t>(h.dims[1]);
    const auto W = static_cast<std::int64_t>(h.dims[2]);
    if (n == 0 || H == 0 || W == 0) {
        throw DatasetError(options.imagesPath + ": no images (a dimension is 0)");
    }
    std::vector<std::int64_t> labels;
    std::vector<std::string> names;
    if (!options.labelsPath.empty()) {
        const IdxBuffer lab = loadIdxBuffer(options.labelsPath);
        const idx::IdxHeader& lh = lab.header;
        if (lh.dims.size() != 1 || lh.type == idx::IdxType::Float32
            || lh.type == idx::IdxType::Float64) {
            throw DatasetError(options.labelsPath + ": expected labels [N] of an integer type, got "
                + std::to_string(lh.dims.size()) + " dimensions of " + idx::typeName(lh.type));
        }
        if (lh.dims[0] != h.dims[0]) {
            throw DatasetError(detail::concat(options.labelsPath, ": ", lh.dims[0],
                " labels for the ", h.dims[0], " images of ", options.imagesPath));
        }
        const std::int64_t use = options.count > 0 ? std::min(options.count, n) : n;
        labels.resize(static_cast<std::size_t>(use));
        std::int64_t maxLabel = 0;
        for (std::int64_t i = 0; i < use; ++i) {
            const double v = idx::elementAt(lab.data(), lh, static_cast<std::uint64_t>(i));
            if (v < 0) {
                throw DatasetError(detail::concat(
                    options.labelsPath, ": label ", i, " is negative (", v, ")"));
            }
            labels[static_cast<std::size_t>(i)] = static_cast<std::int64_t>(v);
            maxLabel = std::max(maxLabel, labels[static_cast<std::size_t>(i)]);
        }
        names = options.labelNames;
        if (names.empty()) {
            for (std::int64_t l = 0; l <= maxLabel; ++l) {
                names.push_back(std::to_string(l));
            }
        } else if (static_cast<std::int64_t>(names.size()) <= maxLabel) {
            throw DatasetError(detail::concat(options.labelsPath, ": label ", maxLabel,
                " has no name (", names.size(), " label names)"));
        }
    }
    if (options.count > 0) {
        n = std::min(options.count, n);
    }
    std::vector<std::vector<float>> clouds(static_cast<std::size_t>(n));
    std::vector<std::uint8_t> transposed;
    for (std::int64_t i = 0; i < n; ++i) {
        const std::uint8_t* px = images.data() + h.dataOffset + i * H * W;
        std::int64_t rows = H;
        std::int64_t cols = W;
        if (options.transpose) {
            transposed.resize(static_cast<std::size_t>(H * W));
            for (std::int64_t r = 0; r < H; ++r) {
                for (std::int64_t c = 0; c < W; ++c) {
                    transposed[static_cast<std::size_t>(c * H + r)] = px[r * W + c];
                }
            }
            px = transposed.data();
            std::swap(rows, cols);
        }
        Rng rng(options.seed, static_cast<std::uint64_t>(i));
        clouds[static_cast<std::size_t>(i)] = imageToCloud(px, rows, cols, options.image, rng);
    }
    PointCloudDataset data
        = datasetFromFlatClouds(clouds, 2, labels, names, options.imagesPath);
    data.name = fs::path(options.imagesPath).stem().string();
    return data;
}

PointCloudDataset loadIdxSpec(const DataSpec& spec)
{
    const std::string where = "idx:" + spec.path;
    IdxImageOptions options;
    std::string split = "train";
    std::string subset;
    std::string classes = "auto";
    std::string transpose = "auto";
    std::string labels;
    bool labelsGiven = false;
    for (const auto& [key, value] : spec.options) {
        if (key == "threshold" || key == "jitter" || key == "points") {
            parseImageCloudOption(options.image, key, value, where);
        } else if (key == "count") {
            options.count = parseCount(where, key, value);
        } else if (key == "seed") {
            options.seed = static_cast<std::uint64_t>(parseCount(where, key, value));
        } else if (key == "labels") {
            labels = value;
            labelsGiven = true;
        } else if (key == "split") {
            if (value != "train" && value != "test") {
                throw ConfigError(where + ": option 'split' must be train or test, got '" + value + "'");
            }
            split = value;
        } else if (key == "subset") {
            subset = value;
        } else if (key == "classes") {
            if (value != "auto" && value != "fashion" && value != "numbers") {
                throw ConfigError(where + ": option 'classes' must be auto, fashion or numbers, got '"
                    + value + "'");
            }
            classes = value;
        } else if (key == "transpose") {
            if (value != "auto" && value != "0" && value != "1") {
                throw ConfigError(where + ": option 'transpose' must be auto, 0 or 1, got '" + value + "'");
            }
            transpose = value;
        } else {
            throw ConfigError(where + ": unknown option '" + key
                + "' (valid: classes, count, jitter, labels, points, seed, split, subset, threshold, "
                  "transpose)");
        }
    }
    std::error_code ec;
    if (fs::is_directory(spec.path, ec)) {
        const FolderFiles found = findInFolder(spec.path, split, subset, where);
        options.imagesPath = found.images;
        options.labelsPath = labelsGiven ? labels : found.labels;
    } else {
        if (!fs::exists(spec.path, ec)) {
            throw DatasetError(spec.path + ": no such file or folder");
        }
        if (spec.options.count("split") || spec.options.count("subset")) {
            throw ConfigError(where + ": options 'split' and 'subset' apply to folders only");
        }
        options.imagesPath = spec.path;
        options.labelsPath = labelsGiven ? labels : siblingLabels(spec.path);
    }
    const std::string fileName = fs::path(options.imagesPath).filename().string();
    options.transpose = transpose == "1" || (transpose == "auto" && iequalsPrefix(fileName, "emnist"));
    if (!options.labelsPath.empty()) {
        if (classes == "fashion") {
            options.labelNames = fashionMnistClassNames();
        } else if (classes == "auto") {
            options.labelNames = emnistMapping(options.imagesPath);
            if (options.labelNames.empty()
                && containsNoCase(fs::absolute(options.imagesPath, ec).string(), "fashion")) {
                // Fashion-MNIST uses MNIST's file names: recognise it by its folder or file name.
                const torch::Tensor lab = readIdx(options.labelsPath);
                if (lab.numel() > 0 && lab.max().item<std::int64_t>() <= 9) {
                    options.labelNames = fashionMnistClassNames();
                }
            }
        }
    }
    PointCloudDataset data = readIdxImages(options);
    data.name = fs::path(spec.path).filename().string();
    if (data.name.empty()) {
        data.name = fs::path(spec.path).parent_path().filename().string();
    }
    return data;
}

} // namespace wfm::data
