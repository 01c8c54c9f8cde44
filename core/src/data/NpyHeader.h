#pragma once
// The NPY header parser (format versions 1.0-3.0: magic, version, header length and the Python
// dict literal with 'descr', 'fortran_order' and 'shape'), split out of Npy.cpp so that it
// builds without LibTorch: tests/fuzz/fuzz_npyheader.cpp compiles it alone. Every function
// throws wfm::DatasetError "WHAT: problem" on malformed input and never reads outside the text
// it is given.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wfm::data::npy {

/// The six magic bytes every .npy file starts with.
inline constexpr std::string_view kMagic { "\x93NUMPY", 6 };

/// Throws DatasetError(what + ": " + problem).
[[noreturn]] void fail(const std::string& what, const std::string& problem);

/// The header text for a one-line message: control characters become spaces, trailing padding
/// goes, and long headers are cut.
std::string excerpt(std::string_view text);

/// Element types the reader supports.
enum class Element { Float32, Float64, Int64, Int32, Int16, Int8, UInt8, Bool };

/// A parsed 'descr'.
struct DType
{
    Element element;
    std::size_t itemSize;
    bool bigEndian;
    bool isBool;
};

/// The supported 'descr' strings, for messages.
extern const char* const kSupportedDtypes;

/// Parses a 'descr' string ("<f4", "|u1", ">i8", ...). Throws for unsupported dtypes.
DType parseDtype(const std::string& descr, const std::string& what);

/// "(2, 3)", "(5,)", "()": a shape as numpy prints it.
std::string shapeText(const std::vector<std::int64_t>& shape);

/// A parsed header.
struct Header
{
    std::string descr;
    DType dtype {};
    bool fortranOrder = false;
    std::vector<std::int64_t> shape;
    std::size_t dataOffset = 0; // bytes before the array data
    std::size_t dataBytes = 0; // bytes the shape needs
};

/// Parses the fixed preamble; returns the header text length and sets the data offset.
/// `prefix` holds at least the first min(12, fileSize) bytes.
std::size_t parsePreamble(std::string_view prefix, std::size_t fileSize, const std::string& what,
    std::size_t& headerStart);

/// Parses the header dict; checks the element and byte counts for overflow (not against the
/// file: the caller compares dataBytes with what it has).
Header parseHeaderText(std::string_view text, const std::string& what);

} // namespace wfm::data::npy
