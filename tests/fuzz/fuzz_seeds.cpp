// Writes the seed corpora of the fuzz targets: small valid inputs of each format, one folder per
// target under the folder given as argv[1].
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

void put(const fs::path& file, const std::string& bytes)
{
    std::ofstream out(file, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string be32(std::uint32_t v)
{
    return { static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
        static_cast<char>(v) };
}

std::string idxFile(std::uint8_t type, const std::vector<std::uint32_t>& dims, std::size_t item)
{
    std::string s { '\0', '\0', static_cast<char>(type), static_cast<char>(dims.size()) };
    std::size_t count = 1;
    for (const auto d : dims) {
        s += be32(d);
        count *= d;
    }
    for (std::size_t i = 0; i < count * item; ++i) {
        s += static_cast<char>((i * 37) & 0xff);
    }
    return s;
}

std::string gzip(const std::string& raw)
{
    z_stream zs {};
    deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&zs, static_cast<uLong>(raw.size())) + 64, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
    zs.avail_in = static_cast<uInt>(raw.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: fuzz_seeds OUTDIR\n");
        return 2;
    }
    const fs::path root(argv[1]);
    const fs::path idx = root / "idx";
    const fs::path mesh = root / "meshheader";
    const fs::path npy = root / "npyheader";
    for (const auto& d : { idx, mesh, npy }) {
        fs::create_directories(d);
    }
    // IDX: images [2,4,3] uint8, labels [2], int16 / int32 / float32 / float64 arrays, a 0-d array,
    // and gzip-compressed copies.
    const std::string images = idxFile(0x08, { 2, 4, 3 }, 1);
    put(idx / "images.idx3", images);
    put(idx / "labels.idx1", idxFile(0x08, { 2 }, 1));
    put(idx / "int16.idx", idxFile(0x0B, { 3, 2 }, 2));
    put(idx / "int32.idx", idxFile(0x0C, { 5 }, 4));
    put(idx / "float32.idx", idxFile(0x0D, { 2, 2 }, 4));
    put(idx / "float64.idx", idxFile(0x0E, { 1, 1, 1, 2 }, 8));
    put(idx / "scalar.idx", idxFile(0x09, {}, 1));
    put(idx / "images.idx3.gz", gzip(images));
    put(idx / "labels.idx1.gz", gzip(idxFile(0x08, { 2 }, 1)));
    put(idx / "two-members.gz", gzip(images.substr(0, 10)) + gzip(images.substr(10)));

    // OFF and PLY headers (with small bodies).
    put(mesh / "tetra.off",
        "OFF\n4 4 6\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n");
    put(mesh / "glued.off", "OFF3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n");
    put(mesh / "comments.off", "# a comment\nCOFF\n\n# counts\n3 1\n0 0 0 1 1 1 1\n1 0 0 1 1 1 1\n0 1 0 1 1 1 1\n3 0 1 2\n");
    put(mesh / "ascii.ply",
        "ply\nformat ascii 1.0\ncomment seed\nelement vertex 3\nproperty float x\nproperty float y\n"
        "property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
        "0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n");
    std::string binary = "ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\n"
                         "property float y\nproperty float z\nend_header\n";
    binary.append(36, '\0');
    put(mesh / "binary.ply", binary);

    // NPY headers (format 1.0 and 2.0).
    auto npyFile = [](const std::string& dict, int major, std::size_t dataBytes) {
        std::string header = dict;
        const std::size_t pre = major == 1 ? 10 : 12;
        header.append((64 - (pre + header.size() + 1) % 64) % 64, ' ');
        header += '\n';
        std::string out("\x93NUMPY", 6);
        out += static_cast<char>(major);
        out += '\0';
        const std::size_t n = header.size();
        out += static_cast<char>(n & 0xff);
        out += static_cast<char>((n >> 8) & 0xff);
        if (major != 1) {
            out += static_cast<char>((n >> 16) & 0xff);
            out += static_cast<char>((n >> 24) & 0xff);
        }
        return out + header + std::string(dataBytes, '\x01');
    };
    put(npy / "f4.npy", npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 1, 24));
    put(npy / "i8.npy", npyFile("{'descr': '<i8', 'fortran_order': True, 'shape': (3,), }", 1, 24));
    put(npy / "b1.npy", npyFile("{'descr': '|b1', 'fortran_order': False, 'shape': (), }", 1, 1));
    put(npy / "v2.npy", npyFile("{'descr': '>f8', 'fortran_order': False, 'shape': (1, 1, 2), }", 2, 16));
    put(npy / "unicode.npy", npyFile("{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", 1, 24));
    return 0;
}
