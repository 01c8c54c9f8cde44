#include "wfm/io/Mesh.h"

#include "wfm/Error.h"
#include "wfm/Log.h"
#include "wfm/Parallel.h"
#include "wfm/data/DataSpec.h"
#include "wfm/data/Npy.h"

#include "MeshHeaderCheck.h"
#include "Registration.h"

#include <torch/torch.h>

#include <assimp/Importer.hpp>
#include <assimp/postprocess.h>
#include <assimp/scene.h>
#include <assimp/version.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <sstream>

#include <unistd.h>

namespace wfm::io {
namespace {

namespace fs = std::filesystem;

/// Files larger than this are refused outright (a mesh reader is not a streaming tool).
constexpr std::uint64_t kMaxMeshFileBytes = std::uint64_t(4) << 30;
/// Bytes of a file's start read for the OFF / PLY header checks.
constexpr std::size_t kHeaderPeekBytes = 1 << 16;
/// Bumped whenever the sampling changes, so old cache entries are not reused.
constexpr const char* kCacheVersion = "wfm-mesh-cache 1";

std::string lowerExtension(const fs::path& p)
{
    std::string e = p.extension().string();
    std::transform(e.begin(), e.end(), e.begin(),
        [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return e;
}

std::string readPrefix(const std::string& path, std::size_t n)
{
    std::ifstream in(path, std::ios::binary);
    std::string s(n, '\0');
    in.read(s.data(), static_cast<std::streamsize>(n));
    s.resize(static_cast<std::size_t>(std::max<std::streamsize>(in.gcount(), 0)));
    return s;
}

std::string readWhole(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return { std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>() };
}

TriangleMesh readXyz(const std::string& path)
{
    std::ifstream in(path);
    TriangleMesh mesh;
    std::string line;
    std::int64_t lineNo = 0;
    while (std::getline(in, line)) {
        ++lineNo;
        const std::size_t first = line.find_first_not_of(" \t\r");
        if (first == std::string::npos || line[first] == '#' || line.compare(first, 2, "//") == 0) {
            continue;
        }
        // strtod (not iostreams): it reads "nan" and "inf", which checkFinite then reports.
        double xyz[3] = { 0, 0, 0 };
        const char* p = line.c_str();
        for (double& value : xyz) {
            char* end = nullptr;
            value = std::strtod(p, &end);
            if (end == p) {
                throw DatasetError(wfm::detail::concat(path, ": line ", lineNo, " is not 'x y z'"));
            }
            p = end;
        }
        const double x = xyz[0];
        const double y = xyz[1];
        const double z = xyz[2];
        mesh.vertices.insert(mesh.vertices.end(),
            { static_cast<float>(x), static_cast<float>(y), static_cast<float>(z) });
    }
    return mesh;
}

void checkFinite(const TriangleMesh& mesh, const std::string& path)
{
    for (std::size_t i = 0; i < mesh.vertices.size(); ++i) {
        if (!std::isfinite(mesh.vertices[i])) {
            throw DatasetError(
                wfm::detail::concat(path, ": vertex ", i / 3, " has a non-finite coordinate"));
        }
    }
}

std::uint64_t fnv1a(std::uint64_t h, std::string_view s)
{
    for (const char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ull;
    }
    return h;
}

constexpr std::uint64_t kFnvOffset = 14695981039346656037ull;

bool hasMeshExtension(const fs::path& p)
{
    static const char* kExtensions[] = { ".obj", ".off", ".ply", ".stl", ".gltf", ".glb", ".fbx",
        ".dae", ".3ds", ".xyz" };
    const std::string e = lowerExtension(p);
    return std::find_if(std::begin(kExtensions), std::end(kExtensions),
               [&](const char* x) { return e == x; })
        != std::end(kExtensions);
}

/// A mesh file of a collection: its path and the part below the collection's root.
struct SourceFile
{
    fs::path path;
    std::string relative;
    std::uint64_t size = 0;
    std::int64_t mtime = 0; // nanoseconds of the file clock
};

std::vector<SourceFile> listSources(const fs::path& root, bool isFolder)
{
    std::vector<SourceFile> out;
    auto add = [&](const fs::path& p, const std::string& rel) {
        std::error_code ec;
        SourceFile f;
        f.path = p;
        f.relative = rel;
        f.size = fs::file_size(p, ec);
        f.mtime = static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
            fs::last_write_time(p, ec).time_since_epoch())
                                                .count());
        out.push_back(std::move(f));
    };
    if (!isFolder) {
        add(root, root.filename().string());
        return out;
    }
    std::error_code ec;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
    if (ec) {
        throw DatasetError(root.string() + ": cannot list the folder (" + ec.message() + ")");
    }
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) {
            break;
        }
        const fs::path& p = it->path();
        if (p.filename().string().rfind('.', 0) == 0) {
            if (it->is_directory(ec)) {
                it.disable_recursion_pending();
            }
            continue;
        }
        if (it->is_regular_file(ec) && hasMeshExtension(p)) {
            add(p, fs::relative(p, root, ec).generic_string());
        }
    }
    std::sort(out.begin(), out.end(),
        [](const SourceFile& a, const SourceFile& b) { return a.relative < b.relative; });
    return out;
}

bool writableFolder(const fs::path& dir)
{
    std::error_code ec;
    fs::create_directories(dir, ec);
    return !ec && fs::is_directory(dir, ec) && ::access(dir.c_str(), W_OK) == 0;
}

fs::path userCacheFolder()
{
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    if (xdg != nullptr && *xdg != '\0') {
        return fs::path(xdg) / "wfm-studio";
    }
    const char* home = std::getenv("HOME");
    return home != nullptr ? fs::path(home) / ".cache" / "wfm-studio" : fs::path();
}

/// "SOURCE-STATE": SOURCE hashes the source's path and the options, STATE also the files'
/// paths, sizes and mtimes. Entries of one SOURCE with another STATE are stale.
std::string cacheKey(const fs::path& root, const std::vector<SourceFile>& files,
    const MeshSamplingOptions& o)
{
    std::uint64_t h = fnv1a(kFnvOffset, kCacheVersion);
    std::error_code ec;
    h = fnv1a(h, fs::weakly_canonical(root, ec).string());
    h = fnv1a(h,
        wfm::detail::concat("|points=", o.points, "|seed=", o.seed, "|fps=", o.fps, "|split=", o.split));
    std::uint64_t state = h;
    for (const SourceFile& f : files) {
        state = fnv1a(state, wfm::detail::concat("|", f.relative, "|", f.size, "|", f.mtime));
    }
    char hex[34];
    std::snprintf(hex, sizeof hex, "%016llx-%016llx", static_cast<unsigned long long>(h),
        static_cast<unsigned long long>(state));
    return hex;
}

/// Removes the stale entries of the source that `fresh` (a cache file) belongs to.
void removeStaleEntries(const fs::path& fresh)
{
    const std::string name = fresh.filename().string();
    const std::string prefix = name.substr(0, name.size() - 16 - 4); // drop "STATE.npz"
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fresh.parent_path(), ec)) {
        const std::string other = e.path().filename().string();
        if (other != name && other.rfind(prefix, 0) == 0 && other.size() == name.size()) {
            fs::remove(e.path(), ec);
        }
    }
}

/// The cache folder for a source: next to it when writable, else the user's cache.
fs::path cacheFolderFor(const fs::path& root, bool isFolder)
{
    const fs::path local = (isFolder ? root : root.parent_path()) / ".wfm-cache";
    if (writableFolder(local)) {
        return local;
    }
    const fs::path user = userCacheFolder();
    if (!user.empty() && writableFolder(user)) {
        return user;
    }
    return {};
}

std::vector<SourceFile> selectSplit(
    std::vector<SourceFile> files, const std::string& split, const fs::path& root)
{
    if (split.empty()) {
        return files;
    }
    std::vector<SourceFile> kept;
    for (SourceFile& f : files) {
        const fs::path rel(f.relative);
        if (std::any_of(rel.begin(), rel.end(), [&](const fs::path& c) { return c == split; })) {
            kept.push_back(std::move(f));
        }
    }
    if (kept.empty()) {
        throw DatasetError(root.string() + ": no mesh files under a '" + split
            + "' folder (split=" + split + ")");
    }
    return kept;
}

/// ShapeNetCore's taxonomy.json: synsetId -> first name.
std::map<std::string, std::string> shapeNetNames(const fs::path& root)
{
    std::map<std::string, std::string> names;
    std::ifstream in(root / "taxonomy.json");
    if (!in) {
        return names;
    }
    try {
        const nlohmann::json j = nlohmann::json::parse(in);
        for (const auto& e : j) {
            if (e.contains("synsetId") && e.contains("name")) {
                std::string n = e["name"].get<std::string>();
                n = n.substr(0, n.find(','));
                names[e["synsetId"].get<std::string>()] = n;
            }
        }
    } catch (const std::exception& e) {
        log::warn(root.string() + "/taxonomy.json: ignored (" + e.what() + ")");
        names.clear();
    }
    return names;
}

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

bool parseFlag(const std::string& where, const std::string& key, const std::string& v)
{
    if (v == "1" || v == "true" || v == "yes") {
        return true;
    }
    if (v == "0" || v == "false" || v == "no") {
        return false;
    }
    throw ConfigError(where + ": option '" + key + "' must be 0 or 1, got '" + v + "'");
}

data::PointCloudDataset loadMeshSpec(const data::DataSpec& spec)
{
    const std::string where = "mesh:" + spec.path;
    MeshSamplingOptions o;
    for (const auto& [key, value] : spec.options) {
        if (key == "points") {
            o.points = static_cast<std::int64_t>(parseUnsigned(where, key, value));
            if (o.points < 1 || o.points > (std::int64_t(1) << 24)) {
                throw ConfigError(where + ": option 'points' must be in [1, 16777216], got '" + value + "'");
            }
        } else if (key == "seed") {
            o.seed = parseUnsigned(where, key, value);
        } else if (key == "fps") {
            o.fps = parseFlag(where, key, value);
        } else if (key == "cache") {
            o.cache = parseFlag(where, key, value);
        } else if (key == "split") {
            if (value != "train" && value != "test") {
                throw ConfigError(where + ": option 'split' must be train or test, got '" + value + "'");
            }
            o.split = value;
        } else {
            throw ConfigError(
                where + ": unknown option '" + key + "' (valid: cache, fps, points, seed, split)");
        }
    }
    return readMeshes(spec.path, o);
}

} // namespace

TriangleMesh readMesh(const std::string& path)
{
    std::error_code ec;
    if (!fs::exists(path, ec)) {
        throw DatasetError(path + ": no such file");
    }
    if (!fs::is_regular_file(path, ec)) {
        throw DatasetError(path + ": not a regular file");
    }
    const std::uint64_t fileSize = fs::file_size(path, ec);
    if (ec) {
        throw DatasetError(path + ": cannot read (" + ec.message() + ")");
    }
    if (fileSize == 0) {
        throw DatasetError(path + ": empty file");
    }
    if (fileSize > kMaxMeshFileBytes) {
        throw DatasetError(wfm::detail::concat(path, ": file too large (", fileSize, " bytes)"));
    }
    const std::string ext = lowerExtension(path);
    TriangleMesh mesh;
    if (ext == ".xyz") {
        mesh = readXyz(path);
        if (mesh.vertices.empty()) {
            throw DatasetError(path + ": no points");
        }
        checkFinite(mesh, path);
        return mesh;
    }
    const std::string prefix = readPrefix(path, kHeaderPeekBytes);
    std::string memory; // a patched copy of the file, when it needs one
    if (ext == ".off") {
        detail::OffHeader h;
        const std::string problem = detail::checkOffHeader(prefix.data(), prefix.size(), fileSize, &h);
        if (!problem.empty()) {
            throw DatasetError(path + ": " + problem);
        }
        // assimp clamps out-of-range face indices silently: check the body first.
        const std::string whole = readWhole(path);
        const std::string bodyProblem = detail::checkOffBody(whole.data(), whole.size(), h);
        if (!bodyProblem.empty()) {
            throw DatasetError(path + ": " + bodyProblem);
        }
        if (h.glued) {
            // "OFF490 518 0" (ModelNet): assimp wants the counts on their own line.
            memory = whole;
            memory.insert(h.keywordEnd, "\n");
        }
    } else if (ext == ".ply") {
        const std::string problem = detail::checkPlyHeader(prefix.data(), prefix.size(), fileSize);
        if (!problem.empty()) {
            throw DatasetError(path + ": " + problem);
        }
    }
    Assimp::Importer importer;
    const unsigned flags = aiProcess_Triangulate | aiProcess_PreTransformVertices
        | aiProcess_ValidateDataStructure | aiProcess_SortByPType;
    const aiScene* scene = nullptr;
    try {
        if (!memory.empty()) {
            scene = importer.ReadFileFromMemory(memory.data(), memory.size(), flags, "off");
        } else {
            scene = importer.ReadFile(path, flags);
        }
    } catch (const std::exception& e) {
        throw DatasetError(path + ": cannot read the mesh (" + e.what() + ")");
    }
    bool pointsOnly = false;
    if (scene == nullptr && std::string(importer.GetErrorString()).find("no faces") != std::string::npos) {
        // A vertex cloud (PLY / OBJ without faces): validation rejects meshes without faces, so
        // read it again without post-processing and keep the vertices only.
        try {
            scene = memory.empty() ? importer.ReadFile(path, 0)
                                   : importer.ReadFileFromMemory(memory.data(), memory.size(), 0, "off");
        } catch (const std::exception& e) {
            throw DatasetError(path + ": cannot read the mesh (" + e.what() + ")");
        }
        pointsOnly = true;
    }
    if (scene == nullptr) {
        throw DatasetError(path + ": cannot read the mesh (" + importer.GetErrorString() + ")");
    }
    for (unsigned m = 0; m < scene->mNumMeshes; ++m) {
        const aiMesh* am = scene->mMeshes[m];
        const auto base = static_cast<std::uint64_t>(mesh.vertices.size() / 3);
        for (unsigned v = 0; am->mVertices != nullptr && v < am->mNumVertices; ++v) {
            const aiVector3D& p = am->mVertices[v];
            mesh.vertices.insert(mesh.vertices.end(), { p.x, p.y, p.z });
        }
        if (am->mVertices == nullptr) {
            continue;
        }
        for (unsigned f = 0; !pointsOnly && am->mFaces != nullptr && f < am->mNumFaces; ++f) {
            const aiFace& face = am->mFaces[f];
            if (face.mNumIndices != 3) {
                continue; // points and lines carry no area
            }
            for (unsigned k = 0; k < 3; ++k) {
                if (face.mIndices[k] >= am->mNumVertices) {
                    throw DatasetError(wfm::detail::concat(path, ": face ", f, " refers to vertex ",
                        face.mIndices[k], " of ", am->mNumVertices));
                }
                mesh.triangles.push_back(static_cast<std::uint32_t>(base + face.mIndices[k]));
            }
        }
    }
    if (mesh.vertices.empty()) {
        throw DatasetError(path + ": the file holds no vertices");
    }
    checkFinite(mesh, path);
    return mesh;
}

torch::Tensor sampleSurface(const TriangleMesh& mesh, std::int64_t n, std::uint64_t seed)
{
    WFM_CHECK(n >= 1, "sampleSurface: n must be >= 1, got ", n);
    const std::int64_t F = mesh.triangleCount();
    const float* v = mesh.vertices.data();
    std::vector<double> cumulative(static_cast<std::size_t>(F));
    double total = 0.0;
    for (std::int64_t f = 0; f < F; ++f) {
        const std::uint32_t* t = mesh.triangles.data() + 3 * f;
        const float* a = v + 3 * t[0];
        const float* b = v + 3 * t[1];
        const float* c = v + 3 * t[2];
        const double u[3] = { double(b[0]) - a[0], double(b[1]) - a[1], double(b[2]) - a[2] };
        const double w[3] = { double(c[0]) - a[0], double(c[1]) - a[1], double(c[2]) - a[2] };
        const double cx = u[1] * w[2] - u[2] * w[1];
        const double cy = u[2] * w[0] - u[0] * w[2];
        const double cz = u[0] * w[1] - u[1] * w[0];
        total += 0.5 * std::sqrt(cx * cx + cy * cy + cz * cz);
        cumulative[static_cast<std::size_t>(f)] = total;
    }
    if (!(total > 0.0) || !std::isfinite(total)) {
        throw DatasetError("sampleSurface: the mesh has no triangle of positive area");
    }
    data::Rng rng(seed, 0x6d657368); // "mesh"
    torch::Tensor out = torch::empty({ n, 3 }, torch::kFloat);
    float* o = out.data_ptr<float>();
    for (std::int64_t i = 0; i < n; ++i) {
        const double pick = rng.uniform() * total;
        auto it = std::upper_bound(cumulative.begin(), cumulative.end(), pick);
        if (it == cumulative.end()) {
            --it;
        }
        const std::uint32_t* t = mesh.triangles.data() + 3 * (it - cumulative.begin());
        double r1 = rng.uniform();
        double r2 = rng.uniform();
        if (r1 + r2 > 1.0) {
            r1 = 1.0 - r1;
            r2 = 1.0 - r2;
        }
        const float* a = v + 3 * t[0];
        const float* b = v + 3 * t[1];
        const float* c = v + 3 * t[2];
        for (int k = 0; k < 3; ++k) {
            o[3 * i + k] = static_cast<float>(a[k] + r1 * (double(b[k]) - a[k]) + r2 * (double(c[k]) - a[k]));
        }
    }
    return out;
}

std::vector<std::int64_t> farthestPointIndices(
    const torch::Tensor& points, std::int64_t m, std::uint64_t seed)
{
    WFM_CHECK(points.dim() == 2 && points.size(1) == 3, "farthestPointIndices: points must be [N,3], got ",
        points.sizes());
    const torch::Tensor p = points.to(torch::kFloat).contiguous();
    const std::int64_t N = p.size(0);
    std::vector<std::int64_t> chosen;
    if (m >= N) {
        for (std::int64_t i = 0; i < N; ++i) {
            chosen.push_back(i);
        }
        return chosen;
    }
    if (m <= 0 || N == 0) {
        return chosen;
    }
    const float* x = p.data_ptr<float>();
    std::vector<float> best(static_cast<std::size_t>(N), std::numeric_limits<float>::infinity());
    data::Rng rng(seed, 0x667073); // "fps"
    std::int64_t current = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(N)));
    chosen.reserve(static_cast<std::size_t>(m));
    for (std::int64_t k = 0; k < m; ++k) {
        chosen.push_back(current);
        const float* c = x + 3 * current;
        std::int64_t next = 0;
        float far = -1.0f;
        for (std::int64_t i = 0; i < N; ++i) {
            const float dx = x[3 * i] - c[0];
            const float dy = x[3 * i + 1] - c[1];
            const float dz = x[3 * i + 2] - c[2];
            const float d = dx * dx + dy * dy + dz * dz;
            float& b = best[static_cast<std::size_t>(i)];
            b = std::min(b, d);
            if (b > far) {
                far = b;
                next = i;
            }
        }
        current = next;
    }
    return chosen;
}

torch::Tensor meshToCloud(
    const std::string& path, const MeshSamplingOptions& options, std::uint64_t stream)
{
    WFM_CHECK(options.points >= 1, "meshToCloud: points must be >= 1, got ", options.points);
    const TriangleMesh mesh = readMesh(path);
    const std::uint64_t seed = options.seed * 0x9e3779b97f4a7c15ull + stream;
    if (mesh.triangles.empty()) {
        // A point cloud file: keep it when small enough, else subsample.
        torch::Tensor all = torch::from_blob(const_cast<float*>(mesh.vertices.data()),
            { mesh.vertexCount(), 3 }, torch::kFloat)
                                .clone();
        if (mesh.vertexCount() <= options.points) {
            return all;
        }
        if (options.fps) {
            return all.index({ torch::tensor(farthestPointIndices(all, options.points, seed)) });
        }
        data::Rng rng(seed, 0x70657275); // partial Fisher-Yates, sorted for a stable order
        std::vector<std::int64_t> idx(static_cast<std::size_t>(mesh.vertexCount()));
        std::iota(idx.begin(), idx.end(), 0);
        for (std::int64_t i = 0; i < options.points; ++i) {
            const auto j = static_cast<std::size_t>(i)
                + rng.below(static_cast<std::uint64_t>(mesh.vertexCount() - i));
            std::swap(idx[static_cast<std::size_t>(i)], idx[j]);
        }
        idx.resize(static_cast<std::size_t>(options.points));
        std::sort(idx.begin(), idx.end());
        return all.index({ torch::tensor(idx) });
    }
    try {
        if (options.fps) {
            const torch::Tensor dense = sampleSurface(mesh, 4 * options.points, seed);
            return dense.index({ torch::tensor(farthestPointIndices(dense, options.points, seed)) })
                .contiguous();
        }
        return sampleSurface(mesh, options.points, seed);
    } catch (const DatasetError& e) {
        throw DatasetError(path + ": " + std::string(e.what()).substr(std::string("sampleSurface: ").size()));
    }
}

std::string meshCachePath(const std::string& path, const MeshSamplingOptions& options)
{
    std::error_code ec;
    const bool isFolder = fs::is_directory(path, ec);
    const std::vector<SourceFile> files
        = selectSplit(listSources(path, isFolder), isFolder ? options.split : "", path);
    const fs::path dir = cacheFolderFor(path, isFolder);
    if (dir.empty()) {
        return {};
    }
    return (dir / ("mesh-" + cacheKey(path, files, options) + ".npz")).string();
}

data::PointCloudDataset readMeshes(const std::string& path, const MeshSamplingOptions& options)
{
    WFM_CHECK(options.points >= 1, "readMeshes: points must be >= 1, got ", options.points);
    std::error_code ec;
    if (!fs::exists(path, ec)) {
        throw DatasetError(path + ": no such file or folder");
    }
    const bool isFolder = fs::is_directory(path, ec);
    const fs::path root(path);
    std::vector<SourceFile> files = listSources(root, isFolder);
    if (files.empty()) {
        throw DatasetError(path + ": no mesh files (looked for .obj .off .ply .stl .gltf .glb .fbx "
                                  ".dae .3ds .xyz)");
    }
    if (isFolder) {
        files = selectSplit(std::move(files), options.split, root);
    } else if (!options.split.empty()) {
        throw ConfigError("mesh:" + path + ": option 'split' applies to folders only");
    }
    std::string cacheFile;
    if (options.cache && data::npzSupported()) {
        const fs::path dir = cacheFolderFor(root, isFolder);
        if (!dir.empty()) {
            cacheFile = (dir / ("mesh-" + cacheKey(root, files, options) + ".npz")).string();
            if (fs::exists(cacheFile, ec)) {
                try {
                    data::PointCloudDataset cached = data::readPointCloudNpz(cacheFile);
                    if (cached.count() == static_cast<std::int64_t>(files.size())) {
                        cached.name = root.filename().empty() ? root.parent_path().filename().string()
                                                              : root.filename().string();
                        return cached;
                    }
                } catch (const std::exception& e) {
                    log::warn("mesh cache " + cacheFile + " ignored: " + e.what());
                }
            }
        }
    }
    // Labels: the first folder below the root.
    std::vector<std::string> labelOf(files.size());
    bool anyLabel = false;
    for (std::size_t i = 0; i < files.size(); ++i) {
        const std::size_t slash = files[i].relative.find('/');
        if (isFolder && slash != std::string::npos) {
            labelOf[i] = files[i].relative.substr(0, slash);
            anyLabel = true;
        }
    }
    std::vector<torch::Tensor> clouds(files.size());
    parallelFor(static_cast<std::int64_t>(files.size()), [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) {
            const SourceFile& f = files[static_cast<std::size_t>(i)];
            clouds[static_cast<std::size_t>(i)]
                = meshToCloud(f.path.string(), options, fnv1a(kFnvOffset, f.relative));
        }
    });
    data::PointCloudDataset data = data::PointCloudDataset::fromClouds(clouds);
    if (anyLabel) {
        const std::map<std::string, std::string> synsets = shapeNetNames(root);
        std::map<std::string, std::int64_t> index;
        for (const std::string& l : labelOf) {
            index.emplace(l.empty() ? "." : l, 0);
        }
        std::int64_t next = 0;
        for (auto& [name, id] : index) {
            id = next++;
            const auto it = synsets.find(name);
            data.labelNames.push_back(it != synsets.end() ? it->second : name);
        }
        std::vector<std::int64_t> labels;
        for (const std::string& l : labelOf) {
            labels.push_back(index.at(l.empty() ? "." : l));
        }
        data.labels = torch::tensor(labels, torch::kLong);
    }
    data.name = root.filename().empty() ? root.parent_path().filename().string()
                                        : (isFolder ? root.filename().string() : root.stem().string());
    if (!cacheFile.empty()) {
        try {
            data::writePointCloudNpz(cacheFile, data);
            removeStaleEntries(cacheFile);
        } catch (const std::exception& e) {
            log::warn("mesh cache " + cacheFile + " not written: " + e.what());
        }
    }
    return data;
}

namespace detail {

void registerMeshReaders()
{
    data::registerDataScheme("mesh", loadMeshSpec,
        "mesh:PATH[?points=2048&seed=0&fps=0&split=train|test&cache=1] surface samples of a mesh "
        "file or a folder of meshes (labels from sub-folders; assimp: OBJ PLY STL OFF glTF FBX ...; "
        ".xyz point files)");
}

std::string meshReaderDescription()
{
    return wfm::detail::concat("mesh (assimp ", aiGetVersionMajor(), ".", aiGetVersionMinor(), ")");
}

} // namespace detail
} // namespace wfm::io
