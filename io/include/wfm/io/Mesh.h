#pragma once

#include "wfm/data/PointCloudDataset.h"

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

/// Meshes as point clouds (assimp): surface samples of OBJ, PLY, STL, OFF, glTF, ... files and
/// of folders of them, reachable as the data scheme
///
///   mesh:PATH[?points=2048&seed=0&fps=0&split=train|test&cache=1]
///
/// PATH is a mesh file or a folder searched recursively (hidden folders skipped). In a folder,
/// the first sub-folder below PATH names the label of each file: ModelNet's
/// CLASS/{train,test}/*.off, or ShapeNetCore's SYNSET/MODEL/models/model_normalized.obj (synset
/// ids become names through PATH/taxonomy.json when it exists). Options:
///   points  surface samples per mesh (point-only files with more points are subsampled; with
///           fewer, all are kept)
///   seed    sampling seed; file f uses a stream derived from its path, so adding files does not
///           change the samples of the others
///   fps     1: draw 4 x points by area, then keep `points` of them by farthest-point sampling
///   split   keep only files with a path component "train" (or "test")
///   cache   0: do not read or write the sample cache
/// Sampled datasets are cached as .npz in PATH/.wfm-cache/ (a file's folder for a file), or in
/// $XDG_CACHE_HOME/wfm-studio (~/.cache/wfm-studio) when that is not writable, under a hash of
/// the files' paths, sizes and modification times and of the options: reopening is instant, a
/// changed file invalidates the entry, and writing a new entry removes the stale ones of the same
/// source and options.
namespace wfm::io {

/// A triangle mesh, or a point cloud when `triangles` is empty.
struct TriangleMesh
{
    std::vector<float> vertices;          ///< [V,3] x,y,z
    std::vector<std::uint32_t> triangles; ///< [F,3] vertex indices
    std::int64_t vertexCount() const { return static_cast<std::int64_t>(vertices.size() / 3); }
    std::int64_t triangleCount() const { return static_cast<std::int64_t>(triangles.size() / 3); }
};

/// Reads a mesh file with assimp (all meshes of the scene, node transforms applied, polygons
/// triangulated), or an .xyz text file ("x y z [...]" per line) as a point cloud. Files with
/// vertices but no faces (PLY / OBJ vertex clouds) give a mesh without triangles.
/// Throws DatasetError "PATH: problem" for a missing, empty or unreadable file, an OFF / PLY
/// header whose counts cannot fit the file, a scene without vertices, out-of-range face indices
/// or non-finite coordinates.
TriangleMesh readMesh(const std::string& path);

/// n points [n,3] float32 uniform with respect to area on the mesh's triangles: a triangle is
/// chosen with probability proportional to its area (cumulative table), then a uniform point in
/// it (reflected barycentric coordinates). Deterministic given the seed. Throws DatasetError
/// when the mesh has no triangle of positive area, ConfigError for n < 1.
torch::Tensor sampleSurface(const TriangleMesh& mesh, std::int64_t n, std::uint64_t seed);

/// Indices of m of the points [N,3] chosen by farthest-point sampling (start point drawn from
/// the seed; every next point is the one farthest from those chosen). m >= N returns 0..N-1.
std::vector<std::int64_t> farthestPointIndices(
    const torch::Tensor& points, std::int64_t m, std::uint64_t seed);

/// Options of meshToCloud() and readMeshes().
struct MeshSamplingOptions
{
    std::int64_t points = 2048; ///< samples per mesh
    std::uint64_t seed = 0;     ///< sampling seed
    bool fps = false;           ///< oversample 4x by area, then farthest-point subsample
    std::string split;          ///< folders: "" (all), "train" or "test"
    bool cache = true;          ///< use the .npz sample cache
};

/// One mesh file as a cloud [n,3] float32 (see the scheme description). `stream` selects the
/// random stream (readMeshes() derives it from the file's relative path).
torch::Tensor meshToCloud(
    const std::string& path, const MeshSamplingOptions& options, std::uint64_t stream = 0);

/// A mesh file or a folder of meshes as a dataset, using the cache. Throws DatasetError naming
/// the offending file, or a folder without mesh files (for the split).
data::PointCloudDataset readMeshes(const std::string& path, const MeshSamplingOptions& options);

/// The cache file readMeshes() uses for (path, options) in the current state of the files.
std::string meshCachePath(const std::string& path, const MeshSamplingOptions& options);

} // namespace wfm::io
