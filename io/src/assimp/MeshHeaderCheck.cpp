#include "MeshHeaderCheck.h"

#include <algorithm>
#include <cctype>
#include <string_view>
#include <vector>

namespace wfm::io::detail {
namespace {

/// Reads an unsigned decimal integer at data[pos]; false on overflow or no digits.
bool readCount(std::string_view text, std::size_t& pos, std::uint64_t& value)
{
    const std::size_t start = pos;
    value = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        if (__builtin_mul_overflow(value, std::uint64_t { 10 }, &value)
            || __builtin_add_overflow(value, std::uint64_t(text[pos] - '0'), &value)) {
            return false;
        }
        ++pos;
    }
    return pos > start;
}

bool isBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/// Skips blanks, line breaks and '#' comments.
void skipSpaceAndComments(std::string_view text, std::size_t& pos)
{
    while (pos < text.size()) {
        if (isBlank(text[pos]) || text[pos] == '\n') {
            ++pos;
        } else if (text[pos] == '#') {
            while (pos < text.size() && text[pos] != '\n') {
                ++pos;
            }
        } else {
            break;
        }
    }
}

std::string tooMany(std::uint64_t a, const char* aName, std::uint64_t b, const char* bName,
    std::uint64_t fileSize)
{
    return "header claims " + std::to_string(a) + " " + aName + " and " + std::to_string(b) + " "
        + bName + ", too many for a file of " + std::to_string(fileSize) + " bytes";
}

} // namespace

std::string checkOffHeader(
    const char* data, std::size_t size, std::uint64_t fileSize, OffHeader* out)
{
    if (fileSize == 0 || size == 0) {
        return "empty file";
    }
    const std::string_view text(data, size);
    std::size_t pos = 0;
    skipSpaceAndComments(text, pos);
    // Keyword: optional prefix letters/digits (C, N, ST, 4, n) then "OFF".
    const std::size_t wordStart = pos;
    while (pos < text.size() && pos - wordStart < 8
        && std::isalnum(static_cast<unsigned char>(text[pos])) != 0
        && text.substr(pos, 3) != "OFF") {
        ++pos;
    }
    if (text.substr(pos, 3) != "OFF") {
        return "not an OFF file (no OFF keyword at the start)";
    }
    pos += 3;
    OffHeader h;
    h.keywordEnd = pos;
    if (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        h.glued = true;
    } else {
        // Rest of the keyword line: "BINARY" marks the binary variant.
        std::size_t eol = pos;
        while (eol < text.size() && text[eol] != '\n') {
            ++eol;
        }
        const std::string_view rest = text.substr(pos, eol - pos);
        if (rest.find("BINARY") != std::string_view::npos) {
            return "binary OFF is not supported";
        }
        for (const char c : rest) {
            if (!isBlank(c)) {
                return "not an OFF file (unexpected text after the OFF keyword)";
            }
        }
        pos = eol;
        skipSpaceAndComments(text, pos);
    }
    std::uint64_t counts[3] = { 0, 0, 0 };
    for (int i = 0; i < 3; ++i) {
        if (i > 0) {
            while (pos < text.size() && isBlank(text[pos])) {
                ++pos;
            }
            if (i == 2 && (pos >= text.size() || text[pos] == '\n')) {
                break; // the edge count is optional
            }
        }
        if (pos < text.size() && text[pos] == '-') {
            return "negative count in the OFF header";
        }
        if (!readCount(text, pos, counts[i])) {
            return pos >= text.size() ? "truncated OFF header (no vertex/face counts)"
                                      : "malformed OFF header (vertex/face counts expected)";
        }
    }
    h.vertices = counts[0];
    h.faces = counts[1];
    // "x y z\n" is at least 6 bytes and "3 a b c\n" at least 8.
    std::uint64_t vertexBytes = 0;
    std::uint64_t faceBytes = 0;
    std::uint64_t need = 0;
    if (__builtin_mul_overflow(h.vertices, std::uint64_t { 6 }, &vertexBytes)
        || __builtin_mul_overflow(h.faces, std::uint64_t { 8 }, &faceBytes)
        || __builtin_add_overflow(vertexBytes, faceBytes, &need) || need > fileSize) {
        return tooMany(h.vertices, "vertices", h.faces, "faces", fileSize);
    }
    if (h.vertices == 0) {
        return "OFF file has no vertices";
    }
    while (pos < text.size() && text[pos] != '\n') {
        ++pos;
    }
    h.bodyStart = pos;
    if (out != nullptr) {
        *out = h;
    }
    return {};
}

std::string checkOffBody(const char* data, std::size_t size, const OffHeader& header)
{
    const std::string_view text(data, size);
    std::size_t pos = std::min(header.bodyStart, size);
    std::uint64_t line = 0; // data lines seen: vertices first, then faces
    const std::uint64_t total = header.vertices + header.faces;
    while (line < total) {
        skipSpaceAndComments(text, pos);
        if (pos >= text.size()) {
            if (line < header.vertices) {
                return "truncated: " + std::to_string(line) + " of " + std::to_string(header.vertices)
                    + " vertices";
            }
            return "truncated: " + std::to_string(line - header.vertices) + " of "
                + std::to_string(header.faces) + " faces";
        }
        std::size_t eol = pos;
        while (eol < text.size() && text[eol] != '\n') {
            ++eol;
        }
        if (line >= header.vertices) {
            const std::uint64_t face = line - header.vertices;
            std::size_t p = pos;
            std::uint64_t k = 0;
            if (!readCount(text, p, k) || k == 0) {
                return "face " + std::to_string(face) + " has no vertex count";
            }
            for (std::uint64_t j = 0; j < k; ++j) {
                while (p < eol && isBlank(text[p])) {
                    ++p;
                }
                std::uint64_t index = 0;
                if (p < eol && text[p] == '-') {
                    return "face " + std::to_string(face) + " has a negative vertex index";
                }
                if (p >= eol || !readCount(text, p, index)) {
                    return "face " + std::to_string(face) + " lists fewer than " + std::to_string(k)
                        + " vertex indices";
                }
                if (index >= header.vertices) {
                    return "face " + std::to_string(face) + " refers to vertex " + std::to_string(index)
                        + " of " + std::to_string(header.vertices);
                }
            }
        }
        pos = eol;
        ++line;
    }
    return {};
}

std::string checkPlyHeader(const char* data, std::size_t size, std::uint64_t fileSize)
{
    if (fileSize == 0 || size == 0) {
        return "empty file";
    }
    const std::string_view text(data, size);
    if (text.substr(0, 3) != "ply") {
        return "not a PLY file (no 'ply' magic)";
    }
    const std::size_t end = text.find("end_header");
    if (end == std::string_view::npos) {
        return "truncated PLY header (no end_header)";
    }
    std::size_t dataStart = text.find('\n', end);
    dataStart = dataStart == std::string_view::npos ? size : dataStart + 1;
    enum class Format { Unknown, Ascii, Binary } format = Format::Unknown;
    struct Element
    {
        std::uint64_t count = 0;
        std::uint64_t bytes = 0; // minimum bytes per item
    };
    std::vector<Element> elements;
    std::size_t pos = 0;
    auto typeSize = [](std::string_view t) -> std::uint64_t {
        if (t == "char" || t == "uchar" || t == "int8" || t == "uint8") {
            return 1;
        }
        if (t == "short" || t == "ushort" || t == "int16" || t == "uint16") {
            return 2;
        }
        if (t == "int" || t == "uint" || t == "float" || t == "int32" || t == "uint32"
            || t == "float32") {
            return 4;
        }
        if (t == "double" || t == "float64") {
            return 8;
        }
        return 0;
    };
    while (pos < end) {
        std::size_t eol = text.find('\n', pos);
        if (eol == std::string_view::npos || eol > end) {
            eol = end;
        }
        // Split the line into words.
        std::vector<std::string_view> words;
        std::size_t i = pos;
        while (i < eol && words.size() < 8) {
            while (i < eol && (isBlank(text[i]))) {
                ++i;
            }
            const std::size_t s = i;
            while (i < eol && !isBlank(text[i])) {
                ++i;
            }
            if (i > s) {
                words.push_back(text.substr(s, i - s));
            }
        }
        pos = eol + 1;
        if (words.empty()) {
            continue;
        }
        if (words[0] == "format" && words.size() >= 2) {
            if (words[1] == "ascii") {
                format = Format::Ascii;
            } else if (words[1] == "binary_little_endian" || words[1] == "binary_big_endian") {
                format = Format::Binary;
            } else {
                return "unknown PLY format '" + std::string(words[1]) + "'";
            }
        } else if (words[0] == "element") {
            if (words.size() < 3) {
                return "malformed PLY element line";
            }
            Element e;
            std::size_t p = 0;
            if (!readCount(words[2], p, e.count) || p != words[2].size()) {
                return "malformed PLY element count '" + std::string(words[2]) + "'";
            }
            elements.push_back(e);
        } else if (words[0] == "property") {
            if (elements.empty()) {
                return "PLY property before any element";
            }
            std::uint64_t bytes = 0;
            if (words.size() >= 2 && words[1] == "list") {
                if (words.size() < 5) {
                    return "malformed PLY list property";
                }
                bytes = typeSize(words[2]);
                if (bytes == 0 || typeSize(words[3]) == 0) {
                    return "unknown PLY property type in a list";
                }
            } else {
                if (words.size() < 3) {
                    return "malformed PLY property line";
                }
                bytes = typeSize(words[1]);
                if (bytes == 0) {
                    return "unknown PLY property type '" + std::string(words[1]) + "'";
                }
            }
            elements.back().bytes += format == Format::Ascii ? 2 : bytes;
        }
    }
    if (format == Format::Unknown) {
        return "PLY header has no format line";
    }
    const std::uint64_t available = fileSize > dataStart ? fileSize - dataStart : 0;
    std::uint64_t need = 0;
    for (const Element& e : elements) {
        std::uint64_t b = 0;
        if (__builtin_mul_overflow(e.count, e.bytes, &b) || __builtin_add_overflow(need, b, &need)
            || need > available) {
            return "PLY header claims elements of " + std::to_string(e.count)
                + " items, too many for the " + std::to_string(available) + " bytes after the header";
        }
    }
    return {};
}

} // namespace wfm::io::detail
