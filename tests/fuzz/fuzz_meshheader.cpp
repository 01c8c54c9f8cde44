// Fuzz target: the OFF and PLY header plausibility checks (io/src/assimp/MeshHeaderCheck.cpp).
#include "assimp/MeshHeaderCheck.h"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace wfm::io::detail;
    const auto* text = reinterpret_cast<const char*>(data);
    OffHeader off;
    if (checkOffHeader(text, size, size, &off).empty()) {
        // Accepted counts must fit the file, and the keyword end must lie inside the buffer.
        if (off.keywordEnd > size || off.vertices > size / 6 || off.faces > size / 8) {
            std::abort();
        }
        checkOffBody(text, size, off);
    }
    // The same bytes claimed to be the prefix of a much larger file.
    checkOffHeader(text, size, std::uint64_t(1) << 40, nullptr);
    checkPlyHeader(text, size, size);
    checkPlyHeader(text, size, std::uint64_t(1) << 40);
    return 0;
}
