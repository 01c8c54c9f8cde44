#pragma once
// Plausibility checks of the counts that OFF and PLY headers declare, done before a file goes to
// assimp so that a header claiming a billion vertices fails fast instead of allocating for them.
// Free of assimp and LibTorch so that tests/fuzz/ can compile it alone.

#include <cstddef>
#include <cstdint>
#include <string>

namespace wfm::io::detail {

/// What checkOffHeader found.
struct OffHeader
{
    std::uint64_t vertices = 0;
    std::uint64_t faces = 0;
    /// The counts follow the keyword on its own line without a separator ("OFF490 518 0", as in
    /// some ModelNet files): assimp needs a line break inserted at `keywordEnd`.
    bool glued = false;
    std::size_t keywordEnd = 0; ///< offset just after "OFF" in the buffer
    std::size_t bodyStart = 0;  ///< offset of the line after the counts
};

/// Checks the header of an ASCII OFF file (its first bytes in [data, data + size); `fileSize` is
/// the whole file's size). Accepts the keywords OFF, COFF, NOFF, CNOFF, STOFF, 4OFF and friends,
/// '#' comments and blank lines before the counts. Returns "" when the header is plausible (every
/// vertex needs at least 6 bytes and every face 8, so the counts must fit the file), otherwise a
/// one-line problem ("not an OFF file (...)", "header claims 1000000000 vertices and 1 faces, too
/// many for a file of 120 bytes", "binary OFF is not supported").
std::string checkOffHeader(
    const char* data, std::size_t size, std::uint64_t fileSize, OffHeader* out = nullptr);

/// Checks the body of an ASCII OFF file whose header `header` (from checkOffHeader) describes:
/// after the counts, `vertices` non-empty lines, then `faces` lines "k i1 ... ik" with every
/// index in [0, vertices) and k >= 1 (assimp clamps bad indices silently). Returns "" or a
/// one-line problem ("face 3 refers to vertex 7 of 3", "truncated: 2 of 4 faces").
std::string checkOffBody(const char* data, std::size_t size, const OffHeader& header);

/// Checks a PLY header (ascii, binary_little_endian or binary_big_endian): the header must end
/// with "end_header" within [data, data + size), and the elements it declares must fit in the
/// rest of the file (at least 2 bytes per ascii property, the sizes of the binary types). Returns
/// "" when plausible, otherwise a one-line problem.
std::string checkPlyHeader(const char* data, std::size_t size, std::uint64_t fileSize);

} // namespace wfm::io::detail
