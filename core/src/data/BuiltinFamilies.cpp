#include "wfm/data/BuiltinFamilies.h"

#include "wfm/Error.h"
#include "wfm/data/Tissue.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <mutex>
#include <cmath>
#include <numbers>
#include <sstream>

namespace wfm::data {
namespace {

constexpr double kPi = std::numbers::pi;

using Vec3 = std::array<double, 3>;
using Mat3 = std::array<Vec3, 3>;

void checkCommon(const char* family, std::int64_t count, std::int64_t minPoints,
    std::int64_t maxPoints, double noise)
{
    WFM_CHECK(count >= 1, family, ": count must be >= 1, got ", count);
    WFM_CHECK(minPoints >= 1, family, ": min must be >= 1, got ", minPoints);
    WFM_CHECK(minPoints <= maxPoints, family, ": min (", minPoints, ") must be <= max (",
        maxPoints, ")");
    WFM_CHECK(maxPoints <= (std::int64_t { 1 } << 24), family, ": max must be <= 16777216, got ",
        maxPoints);
    WFM_CHECK(std::isfinite(noise) && noise >= 0.0, family, ": noise must be >= 0, got ", noise);
}

/// Uniformly random rotation (Haar measure): the matrix of a uniformly random unit quaternion.
Mat3 randomRotation(Rng& rng)
{
    double q[4];
    double norm = 0.0;
    do {
        norm = 0.0;
        for (double& v : q) {
            v = rng.normal();
            norm += v * v;
        }
    } while (norm < 1e-12);
    norm = std::sqrt(norm);
    const double w = q[0] / norm;
    const double x = q[1] / norm;
    const double y = q[2] / norm;
    const double z = q[3] / norm;
    return { Vec3 { 1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w) },
        Vec3 { 2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w) },
        Vec3 { 2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y) } };
}

/// A uniform point of the disk of radius r in the plane z = zc, facing up or down (the facing
/// does not change the point).
Vec3 diskPoint(Rng& rng, double r, double zc)
{
    const double rho = r * std::sqrt(rng.uniform());
    const double phi = 2.0 * kPi * rng.uniform();
    return { rho * std::cos(phi), rho * std::sin(phi), zc };
}

Vec3 spherePoint(Rng& rng)
{
    for (;;) {
        const Vec3 g { rng.normal(), rng.normal(), rng.normal() };
        const double n = std::sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]);
        if (n > 1e-12) {
            return { g[0] / n, g[1] / n, g[2] / n };
        }
    }
}

Vec3 surfacePoint(ShapeClass shape, Rng& rng)
{
    switch (shape) {
    case ShapeClass::Sphere: {
        const Vec3 u = spherePoint(rng);
        return { kSphereRadius * u[0], kSphereRadius * u[1], kSphereRadius * u[2] };
    }
    case ShapeClass::Torus: {
        // Area element (R + r cos v) du dv: u uniform, v by rejection against R + r.
        const double R = kTorusMajor;
        const double r = kTorusMinor;
        const double u = 2.0 * kPi * rng.uniform();
        double v = 0.0;
        do {
            v = 2.0 * kPi * rng.uniform();
        } while (rng.uniform() * (R + r) >= R + r * std::cos(v));
        const double rho = R + r * std::cos(v);
        return { rho * std::cos(u), rho * std::sin(u), r * std::sin(v) };
    }
    case ShapeClass::Box: {
        // Pick a face pair by area (faces normal to axis i have area 4 * prod of the others).
        const double a = kBoxHalf[0];
        const double b = kBoxHalf[1];
        const double c = kBoxHalf[2];
        const double areas[3] = { b * c, a * c, a * b };
        const double total = areas[0] + areas[1] + areas[2];
        double pick = rng.uniform() * total;
        int axis = 0;
        while (axis < 2 && pick >= areas[axis]) {
            pick -= areas[axis];
            ++axis;
        }
        Vec3 p {};
        for (int i = 0; i < 3; ++i) {
            p[static_cast<std::size_t>(i)] = kBoxHalf[i] * rng.uniform(-1.0, 1.0);
        }
        p[static_cast<std::size_t>(axis)] = rng.uniform() < 0.5 ? -kBoxHalf[axis] : kBoxHalf[axis];
        return p;
    }
    case ShapeClass::Cylinder: {
        const double r = kCylinderRadius;
        const double h = kCylinderHalfHeight;
        const double side = 2.0 * kPi * r * 2.0 * h;
        const double cap = kPi * r * r;
        const double pick = rng.uniform() * (side + 2.0 * cap);
        if (pick < side) {
            const double phi = 2.0 * kPi * rng.uniform();
            return { r * std::cos(phi), r * std::sin(phi), rng.uniform(-h, h) };
        }
        return diskPoint(rng, r, pick < side + cap ? h : -h);
    }
    case ShapeClass::Cone: {
        const double R = kConeRadius;
        const double h = kConeHalfHeight;
        const double slant = std::sqrt(R * R + 4.0 * h * h);
        const double side = kPi * R * slant;
        const double base = kPi * R * R;
        if (rng.uniform() * (side + base) < side) {
            // The lateral area within distance t (fraction of the slant) of the apex grows as
            // t^2, so t = sqrt(U) is uniform by area.
            const double t = std::sqrt(rng.uniform());
            const double phi = 2.0 * kPi * rng.uniform();
            return { R * t * std::cos(phi), R * t * std::sin(phi), h - 2.0 * h * t };
        }
        return diskPoint(rng, R, -h);
    }
    case ShapeClass::RoundedCube: {
        // Radial projection of a uniform direction u onto F(x) = sum |x_i|^p = 1 has density
        // (x.n) / |x|^3 per unit area; accept with probability |x|^3 / (x.n) / M to flatten it.
        // With F homogeneous of degree p, x.n = p / |grad F|, so the ratio is
        // |x|^3 * sqrt(sum |x_i|^(2(p-1))) <= 3^(3/2 - 3/p) = M (|x_i| <= 1 on the surface).
        const double p = kRoundedCubeExponent;
        const double bound = std::pow(3.0, 1.5 - 3.0 / p);
        for (;;) {
            const Vec3 u = spherePoint(rng);
            const double f = std::pow(std::abs(u[0]), p) + std::pow(std::abs(u[1]), p)
                + std::pow(std::abs(u[2]), p);
            const double s = std::pow(f, -1.0 / p);
            const Vec3 x { u[0] * s, u[1] * s, u[2] * s };
            double g = 0.0;
            for (const double xi : x) {
                g += std::pow(std::abs(xi), 2.0 * (p - 1.0));
            }
            const double ratio = s * s * s * std::sqrt(g); // |x| = s since |u| = 1
            if (rng.uniform() * bound < ratio) {
                return x;
            }
        }
    }
    }
    return {};
}

std::int64_t parseInt(const std::string& family, const std::string& key, const std::string& text)
{
    std::int64_t v = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, v);
    WFM_CHECK(!text.empty() && ec == std::errc() && ptr == end, "builtin:", family, ": option '",
        key, "' must be an integer, got '", text, "'");
    return v;
}

std::uint64_t parseSeed(const std::string& family, const std::string& text)
{
    std::uint64_t v = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, v);
    WFM_CHECK(!text.empty() && ec == std::errc() && ptr == end, "builtin:", family,
        ": option 'seed' must be a non-negative integer, got '", text, "'");
    return v;
}

double parseReal(const std::string& family, const std::string& key, const std::string& text)
{
    std::istringstream is(text);
    is.imbue(std::locale::classic());
    double v = 0.0;
    is >> v;
    WFM_CHECK(!text.empty() && !is.fail() && is.eof(), "builtin:", family, ": option '", key,
        "' must be a number, got '", text, "'");
    return v;
}

struct FamilyInfo
{
    const char* name;
    const char* description;
};

constexpr FamilyInfo kFamilies[] = {
    { "rings",
        "2-D noisy circles and ellipses (random centre, radius 0.3-1.5, rotation), 40-400 points, "
        "labels circle/ellipse" },
    { "shapes3d",
        "3-D surface samples (uniform by area) of sphere, torus, box, cylinder, cone and rounded "
        "cube, random scale 0.5-1.5 and rotation, 256-2048 points, labelled by class" },
};

struct RegisteredFamily
{
    BuiltinLoader loader;
    std::map<std::string, std::string> options;
    std::string description;
};

std::mutex& familyMutex()
{
    static std::mutex m;
    return m;
}

std::map<std::string, RegisteredFamily>& familyRegistry()
{
    static std::map<std::string, RegisteredFamily> r;
    return r;
}

bool isCoreFamily(const std::string& name)
{
    for (const auto& f : kFamilies) {
        if (name == f.name) {
            return true;
        }
    }
    return false;
}

/// The registered family `name`, or nullptr.
const RegisteredFamily* findRegistered(const std::string& name)
{
    registerCoreExtraFamilies(); // core families defined in other files (Tissue.cpp)
    std::lock_guard<std::mutex> lock(familyMutex());
    const auto it = familyRegistry().find(name);
    return it == familyRegistry().end() ? nullptr : &it->second;
}

std::string validNames()
{
    std::string out;
    for (const std::string& n : builtinNames()) {
        out += (out.empty() ? "" : ", ") + n;
    }
    return out;
}

void checkName(const std::string& name)
{
    if (isCoreFamily(name) || findRegistered(name) != nullptr) {
        return;
    }
    throw ConfigError("unknown builtin dataset '" + name + "' (valid: " + validNames() + ")");
}

} // namespace

PointCloudDataset makeRings(const RingsOptions& o)
{
    checkCommon("rings", o.count, o.minPoints, o.maxPoints, o.noise);
    std::vector<torch::Tensor> clouds;
    clouds.reserve(static_cast<std::size_t>(o.count));
    std::vector<std::int64_t> labels(static_cast<std::size_t>(o.count));
    for (std::int64_t k = 0; k < o.count; ++k) {
        Rng rng(o.seed, static_cast<std::uint64_t>(k));
        const bool ellipse = rng.uniform() < 0.5;
        const std::int64_t n = rng.between(o.minPoints, o.maxPoints);
        const double cx = rng.uniform(-2.0, 2.0);
        const double cy = rng.uniform(-2.0, 2.0);
        const double angle = kPi * rng.uniform();
        double a = 0.0;
        double b = 0.0;
        if (ellipse) {
            a = rng.uniform(0.5, 1.5);
            b = std::max(0.3, a * rng.uniform(0.3, 0.7));
        } else {
            a = rng.uniform(0.3, 1.5);
            b = a;
        }
        const double sigma = o.noise * 0.5 * (a + b);
        const double ca = std::cos(angle);
        const double sa = std::sin(angle);
        torch::Tensor pts = torch::empty({ n, 2 }, torch::kFloat);
        auto* p = pts.data_ptr<float>();
        for (std::int64_t i = 0; i < n; ++i) {
            // Uniform by arc length: the speed of (a cos t, b sin t) is at most a (a >= b).
            double t = 0.0;
            do {
                t = 2.0 * kPi * rng.uniform();
            } while (rng.uniform() * a
                >= std::sqrt(a * a * std::sin(t) * std::sin(t) + b * b * std::cos(t) * std::cos(t)));
            const double ex = a * std::cos(t);
            const double ey = b * std::sin(t);
            p[2 * i] = static_cast<float>(cx + ca * ex - sa * ey + sigma * rng.normal());
            p[2 * i + 1] = static_cast<float>(cy + sa * ex + ca * ey + sigma * rng.normal());
        }
        clouds.push_back(pts);
        labels[static_cast<std::size_t>(k)] = ellipse ? 1 : 0;
    }
    PointCloudDataset data = PointCloudDataset::fromClouds(clouds);
    data.labels = torch::tensor(labels, torch::kLong);
    data.labelNames = { "circle", "ellipse" };
    data.name = "rings";
    data.source = "builtin:rings";
    return data;
}

std::vector<std::string> shapeClassNames()
{
    return { "sphere", "torus", "box", "cylinder", "cone", "rounded_cube" };
}

torch::Tensor sampleShapeSurface(ShapeClass shape, std::int64_t n, std::uint64_t seed)
{
    WFM_CHECK(n >= 0, "sampleShapeSurface: n must be >= 0, got ", n);
    Rng rng(seed, 0x5AF ^ static_cast<std::uint64_t>(shape));
    torch::Tensor out = torch::empty({ n, 3 }, torch::kFloat);
    auto* p = out.data_ptr<float>();
    for (std::int64_t i = 0; i < n; ++i) {
        const Vec3 x = surfacePoint(shape, rng);
        for (int j = 0; j < 3; ++j) {
            p[3 * i + j] = static_cast<float>(x[static_cast<std::size_t>(j)]);
        }
    }
    return out;
}

PointCloudDataset makeShapes3d(const Shapes3dOptions& o)
{
    checkCommon("shapes3d", o.count, o.minPoints, o.maxPoints, o.noise);
    std::vector<torch::Tensor> clouds;
    clouds.reserve(static_cast<std::size_t>(o.count));
    std::vector<std::int64_t> labels(static_cast<std::size_t>(o.count));
    for (std::int64_t k = 0; k < o.count; ++k) {
        Rng rng(o.seed, static_cast<std::uint64_t>(k));
        const auto cls = static_cast<std::int64_t>(rng.below(kShapeClassCount));
        const std::int64_t n = rng.between(o.minPoints, o.maxPoints);
        const double scale = rng.uniform(0.5, 1.5);
        const Mat3 rot = randomRotation(rng);
        const double sigma = o.noise * scale;
        torch::Tensor pts = torch::empty({ n, 3 }, torch::kFloat);
        auto* p = pts.data_ptr<float>();
        for (std::int64_t i = 0; i < n; ++i) {
            const Vec3 x = surfacePoint(static_cast<ShapeClass>(cls), rng);
            for (std::size_t r = 0; r < 3; ++r) {
                double v = scale * (rot[r][0] * x[0] + rot[r][1] * x[1] + rot[r][2] * x[2]);
                if (sigma > 0.0) {
                    v += sigma * rng.normal();
                }
                p[3 * i + static_cast<std::int64_t>(r)] = static_cast<float>(v);
            }
        }
        clouds.push_back(pts);
        labels[static_cast<std::size_t>(k)] = cls;
    }
    PointCloudDataset data = PointCloudDataset::fromClouds(clouds);
    data.labels = torch::tensor(labels, torch::kLong);
    data.labelNames = shapeClassNames();
    data.name = "shapes3d";
    data.source = "builtin:shapes3d";
    return data;
}

std::vector<std::string> builtinNames()
{
    std::vector<std::string> out;
    for (const auto& f : kFamilies) {
        out.emplace_back(f.name);
    }
    registerCoreExtraFamilies();
    std::lock_guard<std::mutex> lock(familyMutex());
    for (const auto& [name, family] : familyRegistry()) {
        out.push_back(name);
    }
    return out;
}

void registerBuiltinFamily(const std::string& name, BuiltinLoader loader,
    const std::map<std::string, std::string>& options, const std::string& description)
{
    WFM_CHECK(!name.empty()
            && std::all_of(name.begin(), name.end(),
                [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
                }),
        "registerBuiltinFamily: invalid name '", name, "'");
    WFM_CHECK(!isCoreFamily(name), "registerBuiltinFamily: '", name, "' is a core family");
    WFM_CHECK(static_cast<bool>(loader), "registerBuiltinFamily: empty loader for '", name, "'");
    std::lock_guard<std::mutex> lock(familyMutex());
    familyRegistry()[name] = { std::move(loader), options, description };
}

std::string builtinDescription(const std::string& name)
{
    checkName(name);
    for (const auto& f : kFamilies) {
        if (name == f.name) {
            return f.description;
        }
    }
    return findRegistered(name)->description;
}

std::map<std::string, std::string> builtinOptions(const std::string& name)
{
    checkName(name);
    if (const RegisteredFamily* r = findRegistered(name)) {
        return r->options;
    }
    if (name == "rings") {
        const RingsOptions d;
        return { { "count", std::to_string(d.count) }, { "seed", std::to_string(d.seed) },
            { "min", std::to_string(d.minPoints) }, { "max", std::to_string(d.maxPoints) },
            { "noise", "0.02" } };
    }
    const Shapes3dOptions d;
    return { { "count", std::to_string(d.count) }, { "seed", std::to_string(d.seed) },
        { "min", std::to_string(d.minPoints) }, { "max", std::to_string(d.maxPoints) },
        { "noise", "0" } };
}

PointCloudDataset makeBuiltin(
    const std::string& name, const std::map<std::string, std::string>& options)
{
    const std::map<std::string, std::string> valid = builtinOptions(name); // checks the name
    for (const auto& [key, value] : options) {
        if (valid.count(key) == 0) {
            std::string keys;
            for (const auto& [k, v] : valid) {
                keys += (keys.empty() ? "" : ", ") + k;
            }
            throw ConfigError(
                "builtin:" + name + ": unknown option '" + key + "' (valid: " + keys + ")");
        }
    }
    auto get = [&](const char* key) -> const std::string* {
        const auto it = options.find(key);
        return it == options.end() ? nullptr : &it->second;
    };
    PointCloudDataset data;
    if (const RegisteredFamily* r = findRegistered(name)) {
        data = r->loader(options);
    } else {
    std::int64_t count = 0;
    std::uint64_t seed = 0;
    std::int64_t minPoints = 0;
    std::int64_t maxPoints = 0;
    double noise = 0.0;
    auto readCommon = [&](std::int64_t c, std::int64_t lo, std::int64_t hi, double nz) {
        count = get("count") ? parseInt(name, "count", *get("count")) : c;
        seed = get("seed") ? parseSeed(name, *get("seed")) : 0;
        minPoints = get("min") ? parseInt(name, "min", *get("min")) : lo;
        maxPoints = get("max") ? parseInt(name, "max", *get("max")) : hi;
        noise = get("noise") ? parseReal(name, "noise", *get("noise")) : nz;
    };
    if (name == "rings") {
        const RingsOptions d;
        readCommon(d.count, d.minPoints, d.maxPoints, d.noise);
        data = makeRings({ count, seed, minPoints, maxPoints, noise });
    } else {
        const Shapes3dOptions d;
        readCommon(d.count, d.minPoints, d.maxPoints, d.noise);
        data = makeShapes3d({ count, seed, minPoints, maxPoints, noise });
    }
    }
    data.name = name;
    std::string query;
    for (const auto& [k, v] : options) {
        query += (query.empty() ? "?" : "&") + k + "=" + v;
    }
    data.source = "builtin:" + name + query;
    return data;
}

} // namespace wfm::data
