// Fuzz target: the IDX header parser and gzip inflation (core/src/data/IdxParser.cpp).
#include "data/IdxParser.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace wfm::data::idx;
    std::string error;
    std::string inflated;
    const std::uint8_t* bytes = data;
    std::size_t n = size;
    if (isGzip(data, size)) {
        std::string peek;
        gunzip(data, size, peek, 1024, error, /*stopAtMax=*/true);
        if (!gunzip(data, size, inflated, 1 << 20, error)) {
            return 0;
        }
        bytes = reinterpret_cast<const std::uint8_t*>(inflated.data());
        n = inflated.size();
    }
    IdxHeader header;
    parseIdxHeaderOnly(bytes, n, header, error);
    if (!parseIdxHeader(bytes, n, header, error)) {
        return 0;
    }
    // The parser's promise: the data it describes lies inside the buffer.
    if (header.dataOffset > n || header.dataBytes > n - header.dataOffset
        || header.count * itemSize(header.type) != header.dataBytes) {
        std::abort();
    }
    double sum = 0.0;
    const std::uint64_t last = std::min<std::uint64_t>(header.count, 4096);
    for (std::uint64_t i = 0; i < last; ++i) {
        sum += elementAt(bytes, header, i);
    }
    if (header.count > 0) {
        sum += elementAt(bytes, header, header.count - 1);
    }
    volatile double sink = sum;
    (void)sink;
    return 0;
}
