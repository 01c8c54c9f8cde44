// Fuzz target: the NPY preamble and header-dict parser (core/src/data/NpyHeader.cpp).
#include "data/NpyHeader.h"

#include "wfm/Error.h"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace wfm::data::npy;
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    try {
        std::size_t headerStart = 0;
        const std::size_t length = parsePreamble(bytes.substr(0, 12), size, "fuzz", headerStart);
        // The promise: the header text lies inside the input.
        if (headerStart > size || length > size - headerStart) {
            std::abort();
        }
        const Header h = parseHeaderText(bytes.substr(headerStart, length), "fuzz");
        std::size_t count = 1;
        for (const auto d : h.shape) {
            if (d < 0) {
                std::abort();
            }
            count *= static_cast<std::size_t>(d);
        }
        if (count * h.dtype.itemSize != h.dataBytes) {
            std::abort();
        }
    } catch (const wfm::Error&) {
        // Malformed input is reported, never crashes.
    }
    // The header literal alone, without a preamble.
    try {
        parseHeaderText(bytes, "fuzz");
    } catch (const wfm::Error&) {
    }
    return 0;
}
