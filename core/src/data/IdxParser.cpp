#include "IdxParser.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

namespace wfm::data::idx {
namespace {

std::uint32_t readBigEndian32(const std::uint8_t* p)
{
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8)
        | std::uint32_t(p[3]);
}

template <typename T> T readBigEndian(const std::uint8_t* p)
{
    std::uint8_t bytes[sizeof(T)];
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        bytes[i] = p[sizeof(T) - 1 - i];
    }
    T v;
    std::memcpy(&v, bytes, sizeof(T));
    return v;
}

bool validType(std::uint8_t code)
{
    return code == 0x08 || code == 0x09 || code == 0x0B || code == 0x0C || code == 0x0D
        || code == 0x0E;
}

std::string dimsText(const std::vector<std::uint64_t>& dims)
{
    std::string s;
    for (std::size_t i = 0; i < dims.size(); ++i) {
        if (i > 0) {
            s += 'x';
        }
        s += std::to_string(dims[i]);
    }
    return s.empty() ? "(scalar)" : s;
}

} // namespace

std::size_t itemSize(IdxType type)
{
    switch (type) {
    case IdxType::UInt8:
    case IdxType::Int8:
        return 1;
    case IdxType::Int16:
        return 2;
    case IdxType::Int32:
    case IdxType::Float32:
        return 4;
    case IdxType::Float64:
        return 8;
    }
    return 1;
}

const char* typeName(IdxType type)
{
    switch (type) {
    case IdxType::UInt8:
        return "uint8";
    case IdxType::Int8:
        return "int8";
    case IdxType::Int16:
        return "int16";
    case IdxType::Int32:
        return "int32";
    case IdxType::Float32:
        return "float32";
    case IdxType::Float64:
        return "float64";
    }
    return "?";
}

bool parseIdxHeader(const std::uint8_t* data, std::size_t size, IdxHeader& out, std::string& error)
{
    if (!parseIdxHeaderOnly(data, size, out, error)) {
        return false;
    }
    const std::size_t available = size - out.dataOffset;
    if (out.dataBytes > available) {
        error = "truncated IDX data (dims " + dimsText(out.dims) + " of " + typeName(out.type)
            + " need " + std::to_string(out.dataBytes) + " bytes, the file has "
            + std::to_string(available) + " after the header)";
        return false;
    }
    return true;
}

bool parseIdxHeaderOnly(
    const std::uint8_t* data, std::size_t size, IdxHeader& out, std::string& error)
{
    if (size == 0) {
        error = "not an IDX file (the file is empty)";
        return false;
    }
    if (size < 4) {
        error = "not an IDX file (" + std::to_string(size) + " bytes, shorter than the magic)";
        return false;
    }
    if (data[0] != 0 || data[1] != 0 || !validType(data[2])) {
        char hex[32];
        std::snprintf(hex, sizeof hex, "%02x %02x %02x %02x", data[0], data[1], data[2], data[3]);
        error = std::string("not an IDX file (bad magic ") + hex
            + "; expected 00 00 <type 08|09|0b|0c|0d|0e> <ndim>)";
        return false;
    }
    out = IdxHeader {};
    out.type = static_cast<IdxType>(data[2]);
    const std::size_t ndim = data[3];
    const std::size_t headerBytes = 4 + 4 * ndim;
    if (size < headerBytes) {
        error = "truncated IDX header (" + std::to_string(ndim) + " dimensions need "
            + std::to_string(headerBytes) + " bytes, the file has " + std::to_string(size) + ")";
        return false;
    }
    std::uint64_t count = 1;
    bool overflow = false;
    for (std::size_t i = 0; i < ndim; ++i) {
        const std::uint64_t d = readBigEndian32(data + 4 + 4 * i);
        out.dims.push_back(d);
        if (!overflow && __builtin_mul_overflow(count, d, &count)) {
            overflow = true;
        }
    }
    std::uint64_t bytes = 0;
    if (overflow || __builtin_mul_overflow(count, std::uint64_t(itemSize(out.type)), &bytes)
        || bytes > std::numeric_limits<std::size_t>::max()) {
        error = "dims " + dimsText(out.dims) + " are too large (their product overflows)";
        return false;
    }
    out.count = count;
    out.dataOffset = headerBytes;
    out.dataBytes = static_cast<std::size_t>(bytes);
    return true;
}

bool isGzip(const std::uint8_t* data, std::size_t size)
{
    return size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

bool gunzip(const std::uint8_t* data, std::size_t size, std::string& out, std::size_t maxOutput,
    std::string& error, bool stopAtMax)
{
    out.clear();
    z_stream zs {};
    // 16 + MAX_WBITS: gzip wrapper only.
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        error = "cannot initialise zlib";
        return false;
    }
    std::size_t consumed = 0;
    std::string chunk(1 << 16, '\0');
    int rc = Z_OK;
    bool ok = true;
    while (true) {
        // zlib counts in uInt: feed at most 1 GiB at a time.
        const std::size_t feed = std::min<std::size_t>(size - consumed, std::size_t(1) << 30);
        zs.next_in = const_cast<Bytef*>(data + consumed);
        zs.avail_in = static_cast<uInt>(feed);
        zs.next_out = reinterpret_cast<Bytef*>(chunk.data());
        zs.avail_out = static_cast<uInt>(chunk.size());
        rc = inflate(&zs, Z_NO_FLUSH);
        consumed += feed - zs.avail_in;
        const std::size_t produced = chunk.size() - zs.avail_out;
        if (out.size() + produced > maxOutput) {
            if (stopAtMax) {
                out.append(chunk.data(), maxOutput - out.size());
                break;
            }
            error = "gzip data inflates to more than " + std::to_string(maxOutput) + " bytes";
            ok = false;
            break;
        }
        out.append(chunk.data(), produced);
        if (rc == Z_STREAM_END) {
            // Another member may follow (concatenated gzip files); trailing zeros are padding.
            std::size_t rest = consumed;
            while (rest < size && data[rest] == 0) {
                ++rest;
            }
            if (rest >= size) {
                break;
            }
            if (!isGzip(data + rest, size - rest)) {
                break; // trailing garbage after a complete member, as gzip -d tolerates
            }
            consumed = rest;
            inflateReset(&zs);
            continue;
        }
        if (rc == Z_BUF_ERROR && produced == 0) {
            error = consumed >= size ? "truncated gzip data (the stream ends early)"
                                     : "corrupt gzip data";
            ok = false;
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            error = std::string("corrupt gzip data (") + (zs.msg ? zs.msg : "zlib error") + ")";
            ok = false;
            break;
        }
        if (consumed >= size && zs.avail_out != 0) {
            error = "truncated gzip data (the stream ends early)";
            ok = false;
            break;
        }
    }
    inflateEnd(&zs);
    if (!ok) {
        out.clear();
    }
    return ok;
}

double elementAt(const std::uint8_t* data, const IdxHeader& header, std::uint64_t i)
{
    const std::uint8_t* p = data + header.dataOffset + i * itemSize(header.type);
    switch (header.type) {
    case IdxType::UInt8:
        return p[0];
    case IdxType::Int8:
        return static_cast<std::int8_t>(p[0]);
    case IdxType::Int16:
        return readBigEndian<std::int16_t>(p);
    case IdxType::Int32:
        return readBigEndian<std::int32_t>(p);
    case IdxType::Float32:
        return readBigEndian<float>(p);
    case IdxType::Float64:
        return readBigEndian<double>(p);
    }
    return 0.0;
}

} // namespace wfm::data::idx
