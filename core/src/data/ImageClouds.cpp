#include "wfm/data/ImageClouds.h"

#include "wfm/Error.h"

#include <torch/torch.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <locale>
#include <sstream>

namespace wfm::data {

int otsuThreshold(const std::uint8_t* pixels, std::size_t count)
{
    if (count == 0) {
        return 127;
    }
    std::int64_t histogram[256] = {};
    for (std::size_t i = 0; i < count; ++i) {
        ++histogram[pixels[i]];
    }
    double totalSum = 0.0;
    for (int v = 0; v < 256; ++v) {
        totalSum += double(v) * double(histogram[v]);
    }
    double bestVariance = -1.0;
    int best = 127;
    double lowCount = 0.0;
    double lowSum = 0.0;
    const auto total = static_cast<double>(count);
    for (int t = 0; t < 255; ++t) {
        lowCount += double(histogram[t]);
        lowSum += double(t) * double(histogram[t]);
        const double highCount = total - lowCount;
        if (lowCount == 0.0 || highCount == 0.0) {
            continue;
        }
        const double meanLow = lowSum / lowCount;
        const double meanHigh = (totalSum - lowSum) / highCount;
        const double variance = lowCount * highCount * (meanLow - meanHigh) * (meanLow - meanHigh);
        if (variance > bestVariance) {
            bestVariance = variance;
            best = t;
        }
    }
    return best;
}

std::vector<float> imageToCloud(const std::uint8_t* pixels, std::int64_t height,
    std::int64_t width, const ImageCloudOptions& options, Rng& rng)
{
    WFM_CHECK(height > 0 && width > 0, "imageToCloud: image size must be positive, got ", height,
        "x", width);
    WFM_CHECK(options.otsu || (options.threshold >= 0.0 && options.threshold < 1.0),
        "imageToCloud: threshold must be in [0,1), got ", options.threshold);
    WFM_CHECK(options.jitter >= 0.0 && std::isfinite(options.jitter),
        "imageToCloud: jitter must be >= 0, got ", options.jitter);
    WFM_CHECK(options.maxPoints >= 0, "imageToCloud: max points must be >= 0, got ",
        options.maxPoints);
    const auto count = static_cast<std::size_t>(height * width);
    int cut = 0; // foreground: value > cut
    if (options.otsu) {
        cut = otsuThreshold(pixels, count);
    } else {
        // value / 255 > threshold  <=>  value > floor(threshold * 255)
        cut = static_cast<int>(std::floor(options.threshold * 255.0 + 1e-9));
    }
    std::vector<std::int64_t> on;
    for (std::size_t i = 0; i < count; ++i) {
        if (pixels[i] > cut) {
            on.push_back(static_cast<std::int64_t>(i));
        }
    }
    if (on.empty()) {
        const std::uint8_t top = *std::max_element(pixels, pixels + count);
        for (std::size_t i = 0; i < count; ++i) {
            if (pixels[i] == top) {
                on.push_back(static_cast<std::int64_t>(i));
            }
        }
    }
    if (options.maxPoints > 0 && static_cast<std::int64_t>(on.size()) > options.maxPoints) {
        // Partial Fisher-Yates: the first maxPoints entries become a uniform subset.
        const auto m = static_cast<std::size_t>(options.maxPoints);
        for (std::size_t i = 0; i < m; ++i) {
            const std::size_t j = i + rng.below(on.size() - i);
            std::swap(on[i], on[j]);
        }
        on.resize(m);
        std::sort(on.begin(), on.end());
    }
    const double m = static_cast<double>(std::max(height, width));
    std::vector<float> out;
    out.reserve(on.size() * 2);
    for (const std::int64_t i : on) {
        double r = static_cast<double>(i / width);
        double c = static_cast<double>(i % width);
        if (options.jitter > 0.0) {
            c += options.jitter * (rng.uniform() - 0.5);
            r += options.jitter * (rng.uniform() - 0.5);
        }
        out.push_back(static_cast<float>((2.0 * c + 1.0 - double(width)) / m));
        out.push_back(static_cast<float>((double(height) - 2.0 * r - 1.0) / m));
    }
    return out;
}

PointCloudDataset datasetFromFlatClouds(const std::vector<std::vector<float>>& clouds,
    std::int64_t dim, const std::vector<std::int64_t>& labels,
    const std::vector<std::string>& labelNames, const std::string& what)
{
    WFM_CHECK(dim > 0, "datasetFromFlatClouds: dim must be positive");
    if (clouds.empty()) {
        throw DatasetError(what + ": no clouds");
    }
    WFM_CHECK(labels.empty() || labels.size() == clouds.size(), "datasetFromFlatClouds: ",
        labels.size(), " labels for ", clouds.size(), " clouds");
    const auto K = static_cast<std::int64_t>(clouds.size());
    std::int64_t nmax = 0;
    for (std::size_t k = 0; k < clouds.size(); ++k) {
        const auto n = static_cast<std::int64_t>(clouds[k].size()) / dim;
        if (n < 1 || static_cast<std::int64_t>(clouds[k].size()) != n * dim) {
            throw DatasetError(detail::concat(what, ": cloud ", k, " is empty or malformed"));
        }
        nmax = std::max(nmax, n);
    }
    PointCloudDataset data;
    data.points = torch::zeros({ K, nmax, dim }, torch::kFloat);
    data.weights = torch::zeros({ K, nmax }, torch::kFloat);
    data.sizes = torch::empty({ K }, torch::kLong);
    float* p = data.points.data_ptr<float>();
    float* w = data.weights.data_ptr<float>();
    std::int64_t* s = data.sizes.data_ptr<std::int64_t>();
    for (std::int64_t k = 0; k < K; ++k) {
        const auto& c = clouds[static_cast<std::size_t>(k)];
        const auto n = static_cast<std::int64_t>(c.size()) / dim;
        std::memcpy(p + k * nmax * dim, c.data(), c.size() * sizeof(float));
        std::fill(w + k * nmax, w + k * nmax + n, 1.0f / static_cast<float>(n));
        s[k] = n;
    }
    if (!labels.empty()) {
        data.labels = torch::tensor(labels, torch::kLong);
        data.labelNames = labelNames;
    }
    return data;
}

void parseImageCloudOption(ImageCloudOptions& options, const std::string& key,
    const std::string& value, const std::string& where)
{
    auto real = [&]() {
        std::istringstream is(value);
        is.imbue(std::locale::classic());
        double v = 0.0;
        is >> v;
        if (value.empty() || is.fail() || !is.eof() || !std::isfinite(v)) {
            throw ConfigError(where + ": option '" + key + "' must be a number, got '" + value + "'");
        }
        return v;
    };
    if (key == "threshold") {
        if (value == "otsu") {
            options.otsu = true;
            return;
        }
        const double t = real();
        if (t < 0.0 || t >= 1.0) {
            throw ConfigError(where + ": option 'threshold' must be 'otsu' or a number in [0,1), got '"
                + value + "'");
        }
        options.otsu = false;
        options.threshold = t;
    } else if (key == "jitter") {
        const double j = real();
        if (j < 0.0) {
            throw ConfigError(where + ": option 'jitter' must be >= 0, got '" + value + "'");
        }
        options.jitter = j;
    } else if (key == "points") {
        std::int64_t v = 0;
        const char* end = value.data() + value.size();
        const auto [ptr, ec] = std::from_chars(value.data(), end, v);
        if (value.empty() || ec != std::errc() || ptr != end || v < 0) {
            throw ConfigError(where + ": option 'points' must be an integer >= 0, got '" + value + "'");
        }
        options.maxPoints = v;
    } else {
        throw ConfigError(where + ": '" + key + "' is not an image option");
    }
}

} // namespace wfm::data
