#pragma once

#include "wfm/data/PointCloudDataset.h"

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

/// Synthetic families of point clouds, reachable as data specs `builtin:NAME?key=value&...`
/// (see DataSpec.h). Every family is a pure function of its options: cloud k is drawn from
/// Rng(seed, k), so the same seed gives the same dataset on every machine.
namespace wfm::data {

/// Options of the `rings` family: noisy circles and ellipses in 2-D.
struct RingsOptions
{
    std::int64_t count = 2000;     ///< number of clouds
    std::uint64_t seed = 0;        ///< random seed
    std::int64_t minPoints = 40;   ///< smallest cloud size (inclusive)
    std::int64_t maxPoints = 400;  ///< largest cloud size (inclusive)
    double noise = 0.02;           ///< point noise std, relative to the (mean) radius
};

/// `rings`: each cloud is a circle (label 0, "circle") or an ellipse (label 1, "ellipse"),
/// chosen with probability 1/2, centre uniform in [-2,2]^2, rotation uniform in [0, pi).
/// Circles have radius U[0.3, 1.5]; ellipses a semi-major axis U[0.5, 1.5] and a semi-minor axis
/// of 0.3 to 0.7 times it (at least 0.3). Points are uniform by arc length on the curve
/// (rejection on the speed of the angle parametrisation), plus isotropic Gaussian noise of std
/// noise * r (r = radius, or the mean of the two semi-axes). Size uniform in
/// [minPoints, maxPoints]. Throws ConfigError for count < 1, minPoints < 1, minPoints > maxPoints
/// or noise < 0.
PointCloudDataset makeRings(const RingsOptions& options);

/// The classes of the `shapes3d` family (label = enum value).
enum class ShapeClass { Sphere, Torus, Box, Cylinder, Cone, RoundedCube };

/// Number of shape classes.
inline constexpr int kShapeClassCount = 6;

/// Canonical shapes (before scaling and rotation), all centred at the origin:
inline constexpr double kSphereRadius = 1.0;        ///< |x| = 1
inline constexpr double kTorusMajor = 1.0;          ///< (sqrt(x^2+y^2) - R)^2 + z^2 = r^2, axis z
inline constexpr double kTorusMinor = 0.35;
inline constexpr double kBoxHalf[3] = { 1.0, 0.7, 0.4 }; ///< surface of [-a,a]x[-b,b]x[-c,c]
inline constexpr double kCylinderRadius = 0.6;      ///< closed: side x^2+y^2 = r^2, |z| <= h,
inline constexpr double kCylinderHalfHeight = 0.8;  ///< and the two caps |z| = h
inline constexpr double kConeRadius = 0.8;          ///< closed: apex (0,0,+h), base disk z = -h
inline constexpr double kConeHalfHeight = 0.8;
inline constexpr double kRoundedCubeExponent = 4.0; ///< superquadric |x|^p + |y|^p + |z|^p = 1

/// Names of the classes in label order: sphere, torus, box, cylinder, cone, rounded_cube.
std::vector<std::string> shapeClassNames();

/// n points [n,3] float32 sampled uniformly with respect to surface area on the canonical
/// (unscaled, unrotated) surface of `shape` described above; deterministic given the seed.
/// Exactly uniform: area-weighted choice of primitives (faces, caps, side) and rejection where
/// the parametrisation is not area preserving (torus, rounded cube). Throws ConfigError if n < 0.
torch::Tensor sampleShapeSurface(ShapeClass shape, std::int64_t n, std::uint64_t seed);

/// Options of the `shapes3d` family: surface samples of procedural 3-D shapes.
struct Shapes3dOptions
{
    std::int64_t count = 1200;     ///< number of clouds
    std::uint64_t seed = 0;        ///< random seed
    std::int64_t minPoints = 256;  ///< smallest cloud size (inclusive)
    std::int64_t maxPoints = 2048; ///< largest cloud size (inclusive)
    double noise = 0.0;            ///< isotropic point noise std, relative to the scale
};

/// `shapes3d`: each cloud is one of the kShapeClassCount classes (uniformly at random, label =
/// ShapeClass), sampled uniformly by area on its canonical surface (sampleShapeSurface), scaled
/// by U[0.5, 1.5], rotated by a uniformly random rotation (Haar measure on SO(3)), centred at the
/// origin; size uniform in [minPoints, maxPoints]. Throws ConfigError as makeRings().
PointCloudDataset makeShapes3d(const Shapes3dOptions& options);

/// Names of the built-in families: "rings", "shapes3d", then the registered ones in name order.
std::vector<std::string> builtinNames();

/// Builds a registered family from its (already key-checked) string options.
using BuiltinLoader = std::function<PointCloudDataset(const std::map<std::string, std::string>&)>;

/// Registers (or replaces) a built-in family that lives outside this file (e.g. `letters` in the
/// io library, which needs FreeType), reachable as `builtin:NAME`. `options` lists the accepted
/// keys with their defaults as text; makeBuiltin() rejects other keys before calling `loader`.
/// Thread safe. Throws ConfigError for an invalid name, a core family's name or an empty loader.
void registerBuiltinFamily(const std::string& name, BuiltinLoader loader,
    const std::map<std::string, std::string>& options, const std::string& description);

/// One-line description of a built-in family. Throws ConfigError listing the valid names.
std::string builtinDescription(const std::string& name);

/// Option keys a family accepts, with their defaults as text (e.g. {"count","2000"}).
/// Throws ConfigError listing the valid names.
std::map<std::string, std::string> builtinOptions(const std::string& name);

/// Builds family `name` with string options (as parsed from a data spec; integers in decimal,
/// noise as a decimal number). Unknown names or keys and malformed values throw ConfigError
/// naming the valid ones. The dataset's name is the family name and its source
/// "builtin:NAME?options".
PointCloudDataset makeBuiltin(const std::string& name,
    const std::map<std::string, std::string>& options = {});

} // namespace wfm::data
