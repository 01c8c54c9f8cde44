#include "wfm/data/DataSpec.h"

#include "NpzArchive.h"

#include "wfm/Error.h"
#include "wfm/data/BuiltinFamilies.h"
#include "wfm/data/Idx.h"
#include "wfm/data/Niches.h"
#include "wfm/data/Npy.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string_view>


namespace wfm::data {
namespace {

using npz::endsWithNoCase;
using npz::parseLabelNames;
using npz::readNpzMembers;
using npz::stemOf;

constexpr const char* kBuiltinSchemes[] = { "builtin", "csv", "idx", "npy", "npz" };

struct SchemeEntry
{
    DataSchemeLoader loader;
    std::string help;
};

std::mutex& registryMutex()
{
    static std::mutex m;
    return m;
}

std::map<std::string, SchemeEntry>& registry()
{
    static std::map<std::string, SchemeEntry> r;
    return r;
}

bool isBuiltinScheme(const std::string& s)
{
    return std::find(std::begin(kBuiltinSchemes), std::end(kBuiltinSchemes), s)
        != std::end(kBuiltinSchemes);
}

bool isRegistered(const std::string& s)
{
    std::lock_guard<std::mutex> lock(registryMutex());
    return registry().count(s) != 0;
}

std::string validSchemes()
{
    std::string out;
    for (const auto& [name, help] : dataSchemes()) {
        out += (out.empty() ? "" : ", ") + name;
    }
    return out;
}


void requireNumeric(const torch::Tensor& t, const std::string& what, const char* array)
{
    if (t.scalar_type() == torch::kBool) {
        throw DatasetError(detail::concat(what, ": '", array, "' must be numeric, got bool"));
    }
}

} // namespace

DataSpec parseDataSpec(const std::string& spec)
{
    auto fail = [&](const std::string& problem) {
        throw ConfigError("data spec '" + spec + "': " + problem);
    };
    if (spec.empty()) {
        fail("empty (expected builtin:NAME, npy:PATH, npz:PATH or a .npy/.npz path)");
    }
    DataSpec out;
    out.text = spec;
    const std::size_t question = spec.find('?');
    const std::string head = spec.substr(0, question);
    const std::size_t colon = head.find(':');
    if (colon == std::string::npos) {
        if (endsWithNoCase(head, ".npz")) {
            out.scheme = "npz";
        } else if (endsWithNoCase(head, ".npy")) {
            out.scheme = "npy";
        } else {
            fail("no scheme (expected builtin:NAME, npy:PATH, npz:PATH or a .npy/.npz path; "
                 "schemes: "
                + validSchemes() + ")");
        }
        out.path = head;
    } else {
        out.scheme = head.substr(0, colon);
        out.path = head.substr(colon + 1);
        if (!isBuiltinScheme(out.scheme) && !isRegistered(out.scheme)) {
            fail("unknown scheme '" + out.scheme + "' (valid: " + validSchemes() + ")");
        }
    }
    if (out.path.empty()) {
        fail("empty " + std::string(out.scheme == "builtin" ? "dataset name" : "path"));
    }
    if (question != std::string::npos) {
        const std::string query = spec.substr(question + 1);
        std::size_t begin = 0;
        while (begin <= query.size() && !query.empty()) {
            const std::size_t amp = query.find('&', begin);
            const std::string pair
                = query.substr(begin, amp == std::string::npos ? std::string::npos : amp - begin);
            if (pair.empty()) {
                fail("empty option (options are key=value pairs joined by '&')");
            }
            const std::size_t eq = pair.find('=');
            if (eq == std::string::npos) {
                fail("option '" + pair + "' is not key=value");
            }
            const std::string key = pair.substr(0, eq);
            if (key.empty()) {
                fail("option '" + pair + "' has an empty key");
            }
            if (!out.options.emplace(key, pair.substr(eq + 1)).second) {
                fail("option '" + key + "' is given twice");
            }
            if (amp == std::string::npos) {
                break;
            }
            begin = amp + 1;
        }
    }
    return out;
}

PointCloudDataset readPointCloudNpy(const std::string& path)
{
    const torch::Tensor a = readNpy(path);
    requireNumeric(a, path, "array");
    if (a.dim() != 3) {
        throw DatasetError(
            detail::concat(path, ": expected an array [K,N,d] of K clouds, got shape ", a.sizes()));
    }
    if (a.size(0) < 1 || a.size(1) < 1 || a.size(2) < 1) {
        throw DatasetError(detail::concat(path, ": empty array of shape ", a.sizes()));
    }
    PointCloudDataset data
        = PointCloudDataset::fromPadded(a, torch::ones({ a.size(0), a.size(1) }), path);
    data.name = stemOf(path);
    data.source = "npy:" + path;
    return data;
}

PointCloudDataset readPointCloudNpz(const std::string& path)
{
    const std::map<std::string, std::string> members = readNpzMembers(
        path, { "points", "weights", "sizes", "labels", "label_names", "cond" });
    auto array = [&](const std::string& key) -> torch::Tensor {
        const auto it = members.find(key);
        if (it == members.end()) {
            return {};
        }
        torch::Tensor t = parseNpy(it->second, path + ":" + key + ".npy");
        requireNumeric(t, path, key.c_str());
        return t;
    };
    const torch::Tensor points = array("points");
    if (!points.defined()) {
        throw DatasetError(path
            + ": array 'points' is missing (expected points [K,N,d] (+ weights [K,N]) or points "
              "[total,d] + sizes [K])");
    }
    const torch::Tensor weights = array("weights");
    const torch::Tensor sizes = array("sizes");
    if (sizes.defined() && (sizes.is_floating_point() || sizes.dim() != 1)) {
        throw DatasetError(detail::concat(
            path, ": 'sizes' must be a 1-D integer array, got ", sizes.scalar_type(), " ", sizes.sizes()));
    }
    PointCloudDataset data;
    if (points.dim() == 3) {
        if (points.size(0) < 1 || points.size(1) < 1 || points.size(2) < 1) {
            throw DatasetError(detail::concat(path, ": empty 'points' of shape ", points.sizes()));
        }
        const std::int64_t K = points.size(0);
        const std::int64_t N = points.size(1);
        torch::Tensor w;
        if (weights.defined()) {
            if (weights.dim() != 2 || weights.size(0) != K || weights.size(1) != N) {
                throw DatasetError(detail::concat(path, ": 'weights' must be [", K, ",", N,
                    "] like 'points' ", points.sizes(), ", got ", weights.sizes()));
            }
            w = weights;
        } else if (sizes.defined()) {
            if (sizes.size(0) != K) {
                throw DatasetError(
                    detail::concat(path, ": 'sizes' has ", sizes.size(0), " entries for ", K, " clouds"));
            }
            const torch::Tensor n = sizes.to(torch::kLong);
            if ((n < 1).any().item<bool>() || (n > N).any().item<bool>()) {
                throw DatasetError(
                    detail::concat(path, ": 'sizes' must be in [1, ", N, "] for points ", points.sizes()));
            }
            w = (torch::arange(N, torch::kLong).unsqueeze(0) < n.unsqueeze(1)).to(torch::kFloat);
        } else {
            w = torch::ones({ K, N });
        }
        data = PointCloudDataset::fromPadded(points, w, path);
        if (weights.defined() && sizes.defined()
            && !torch::equal(data.sizes, sizes.to(torch::kLong))) {
            throw DatasetError(path + ": 'sizes' disagrees with the positive entries of 'weights'");
        }
    } else if (points.dim() == 2) {
        if (!sizes.defined()) {
            throw DatasetError(detail::concat(path, ": 'points' ", points.sizes(),
                " is packed [total,d] and needs 'sizes' [K]"));
        }
        if (points.size(1) < 1) {
            throw DatasetError(detail::concat(path, ": 'points' has dimension 0"));
        }
        data = PointCloudDataset::fromPacked(points, sizes, path);
    } else {
        throw DatasetError(detail::concat(
            path, ": 'points' must be [K,N,d] or [total,d], got shape ", points.sizes()));
    }
    const std::int64_t K = data.count();
    const torch::Tensor labels = array("labels");
    if (labels.defined()) {
        if (labels.is_floating_point() || labels.dim() != 1 || labels.size(0) != K) {
            throw DatasetError(detail::concat(path, ": 'labels' must be an integer array [", K,
                "], got ", labels.scalar_type(), " ", labels.sizes()));
        }
        data.labels = labels.to(torch::kLong).contiguous();
        const auto it = members.find("label_names");
        if (it != members.end()) {
            data.labelNames = parseLabelNames(it->second, path + ":label_names.npy");
        } else if (K > 0) {
            const std::int64_t maxLabel = data.labels.max().item<std::int64_t>();
            for (std::int64_t l = 0; l <= maxLabel; ++l) {
                data.labelNames.push_back(std::to_string(l));
            }
        }
    }
    const torch::Tensor cond = array("cond");
    if (cond.defined()) {
        if (!cond.is_floating_point() || cond.dim() != 2 || cond.size(0) != K) {
            throw DatasetError(detail::concat(path, ": 'cond' must be a floating array [", K,
                ",c], got ", cond.scalar_type(), " ", cond.sizes()));
        }
        data.cond = cond.to(torch::kFloat).contiguous();
    }
    data.name = stemOf(path);
    data.source = "npz:" + path;
    return data;
}

void writePointCloudNpz(const std::string& path, const PointCloudDataset& data, NpzLayout layout)
{
    data.validate("writePointCloudNpz(" + path + ")");
    NpzArchive arrays;
    if (layout == NpzLayout::Padded) {
        arrays["points"] = data.points;
        arrays["weights"] = data.weights;
    } else {
        const torch::Tensor live
            = torch::arange(data.maxPoints(), torch::kLong).unsqueeze(0) < data.sizes.unsqueeze(1);
        const torch::Tensor uniform
            = (1.0 / data.sizes.to(torch::kDouble)).unsqueeze(1).expand({ -1, data.maxPoints() });
        const torch::Tensor err = (data.weights.to(torch::kDouble) - uniform).abs();
        WFM_CHECK(data.count() == 0 || !(err.masked_select(live) > 1e-6).any().item<bool>(),
            "writePointCloudNpz: the packed layout stores uniform weights only; use the padded "
            "layout for '",
            path, "'");
        arrays["points"] = data.points.index({ live });
        arrays["sizes"] = data.sizes;
    }
    if (data.hasLabels()) {
        arrays["labels"] = data.labels;
        std::string joined;
        for (const std::string& n : data.labelNames) {
            WFM_CHECK(n.find('\n') == std::string::npos, "writePointCloudNpz: label name '", n,
                "' contains a newline");
            joined += n + "\n";
        }
        torch::Tensor bytes = torch::empty({ static_cast<std::int64_t>(joined.size()) }, torch::kByte);
        std::memcpy(bytes.data_ptr(), joined.data(), joined.size());
        arrays["label_names"] = bytes;
    }
    if (data.hasCond()) {
        arrays["cond"] = data.cond;
    }
    writeNpz(path, arrays, /*compress=*/true);
}

PointCloudDataset loadPointClouds(const DataSpec& spec)
{
    PointCloudDataset data;
    if (spec.scheme == "builtin") {
        data = makeBuiltin(spec.path, spec.options);
    } else if (spec.scheme == "npy" || spec.scheme == "npz") {
        if (!spec.options.empty()) {
            throw ConfigError("data spec '" + spec.text + "': unknown option '"
                + spec.options.begin()->first + "' (" + spec.scheme + ": takes no options)");
        }
        data = spec.scheme == "npy" ? readPointCloudNpy(spec.path) : readPointCloudNpz(spec.path);
    } else if (spec.scheme == "idx") {
        data = loadIdxSpec(spec);
    } else if (spec.scheme == "csv") {
        data = loadCsvNiches(spec.path, spec.options);
    } else {
        DataSchemeLoader loader;
        {
            std::lock_guard<std::mutex> lock(registryMutex());
            const auto it = registry().find(spec.scheme);
            if (it != registry().end()) {
                loader = it->second.loader;
            }
        }
        if (!loader) {
            throw ConfigError("data spec '" + spec.text + "': unknown scheme '" + spec.scheme
                + "' (valid: " + validSchemes() + ")");
        }
        data = loader(spec);
        if (data.name.empty()) {
            data.name = stemOf(spec.path);
        }
    }
    data.source = spec.text.empty() ? spec.scheme + ":" + spec.path : spec.text;
    data.validate(data.source);
    return data;
}

PointCloudDataset loadPointClouds(const std::string& spec)
{
    return loadPointClouds(parseDataSpec(spec));
}

void registerDataScheme(const std::string& scheme, DataSchemeLoader loader, const std::string& help)
{
    WFM_CHECK(!scheme.empty()
            && std::all_of(scheme.begin(), scheme.end(),
                [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
                }),
        "registerDataScheme: invalid scheme name '", scheme, "'");
    WFM_CHECK(!isBuiltinScheme(scheme), "registerDataScheme: '", scheme, "' is reserved");
    WFM_CHECK(static_cast<bool>(loader), "registerDataScheme: empty loader for '", scheme, "'");
    std::lock_guard<std::mutex> lock(registryMutex());
    registry()[scheme] = { std::move(loader), help };
}

namespace {
std::string builtinFamilyList()
{
    std::string out;
    for (const std::string& n : builtinNames()) {
        out += (out.empty() ? "" : ", ") + n;
    }
    return out;
}
} // namespace

std::map<std::string, std::string> dataSchemes()
{
    std::map<std::string, std::string> out {
        { "builtin", "builtin:NAME[?key=value&...] synthetic families: " + builtinFamilyList() },
        { "idx",
            "idx:FILE[?labels=FILE&threshold=0.5|otsu&count=N&jitter=0&points=0] or "
            "idx:FOLDER[?split=train|test] MNIST/Fashion-MNIST/EMNIST images (plain or .gz) as 2-D "
            "clouds of their foreground pixels" },
        { "csv",
            "csv:PATH[?x=x&y=y&z=&section=&label=cell_type&features=auto&k=16&rep=pca&pcs=16&"
            "centers=&include_center=0&max_centers=0&seed=0] cellular niches of a cell table (one "
            "row per cell)" },
        { "npy", "npy:PATH one array [K,N,d] of K clouds of N points" },
        { "npz",
            "npz:PATH points [K,N,d] (+ weights [K,N]) or points [total,d] + sizes [K]; optional "
            "labels, label_names, cond" },
    };
    std::lock_guard<std::mutex> lock(registryMutex());
    for (const auto& [name, entry] : registry()) {
        out[name] = entry.help;
    }
    return out;
}

} // namespace wfm::data
