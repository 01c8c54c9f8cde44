#pragma once
// Byte-level IDX parsing (MNIST / Fashion-MNIST / EMNIST files) and gzip inflation, free of
// LibTorch so that the fuzz targets in tests/fuzz/ can compile it alone.
//
// IDX layout (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type byte, the number of
// dimensions, then that many big-endian uint32 sizes, then the data in C order, big-endian.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace wfm::data::idx {

/// Element types of the IDX format (the third magic byte).
enum class IdxType : std::uint8_t {
    UInt8 = 0x08,
    Int8 = 0x09,
    Int16 = 0x0B,
    Int32 = 0x0C,
    Float32 = 0x0D,
    Float64 = 0x0E,
};

/// Bytes per element of `type`.
std::size_t itemSize(IdxType type);

/// "uint8", "int16", ...
const char* typeName(IdxType type);

/// The header of an IDX array and where its data lies in the buffer.
struct IdxHeader
{
    IdxType type = IdxType::UInt8;
    std::vector<std::uint64_t> dims; ///< sizes, outermost first
    std::uint64_t count = 0;         ///< product of dims (1 for a 0-d array)
    std::size_t dataOffset = 0;      ///< bytes before the data
    std::size_t dataBytes = 0;       ///< count * itemSize(type)
};

/// Parses the header of the IDX file held in [data, data + size) and checks that the data the
/// header describes fits in the buffer (extra trailing bytes are allowed). Returns false and
/// sets `error` to a one-line description ("bad magic ...", "dims 60000x28x28 need 47040000
/// bytes, the file has 123") on any problem; never reads outside the buffer.
bool parseIdxHeader(const std::uint8_t* data, std::size_t size, IdxHeader& out, std::string& error);

/// As parseIdxHeader, without checking that the data fits in the buffer (for a prefix of a
/// larger stream): only the magic and the dimensions must be present.
bool parseIdxHeaderOnly(
    const std::uint8_t* data, std::size_t size, IdxHeader& out, std::string& error);

/// Whether the buffer starts with the gzip magic bytes 1f 8b.
bool isGzip(const std::uint8_t* data, std::size_t size);

/// Inflates a gzip stream (several concatenated members allowed) into `out`. Fails (false, with
/// `error`) for a corrupt or truncated stream or when the output would exceed `maxOutput` bytes;
/// with `stopAtMax` it instead returns true with the first `maxOutput` bytes (to peek at a
/// header).
bool gunzip(const std::uint8_t* data, std::size_t size, std::string& out, std::size_t maxOutput,
    std::string& error, bool stopAtMax = false);

/// Decodes element i of the data (big-endian) as a double. The caller guarantees i < count.
double elementAt(const std::uint8_t* data, const IdxHeader& header, std::uint64_t i);

} // namespace wfm::data::idx
