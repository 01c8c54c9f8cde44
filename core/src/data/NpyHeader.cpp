#include "NpyHeader.h"

#include "wfm/Error.h"

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

// Split out of Npy.cpp so that the NPY header parser builds without LibTorch (tests/fuzz/).

namespace wfm::data::npy {

[[noreturn]] void fail(const std::string& what, const std::string& problem)
{
    throw DatasetError(what + ": " + problem);
}

/// The header text for a one-line message: control characters become spaces, trailing padding
/// goes, and long headers are cut.
std::string excerpt(std::string_view text)
{
    std::string out;
    for (const char c : text.substr(0, 120)) {
        out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
    }
    while (!out.empty() && out.back() == ' ') {
        out.pop_back();
    }
    return text.size() > 120 ? out + "..." : out;
}

namespace {

// ---- header literal ----

/// The subset of Python literals an NPY header uses.
struct PyValue
{
    enum class Kind { String, Bool, None, Int, Tuple, List, Dict };
    Kind kind = Kind::None;
    std::string text; // String
    bool flag = false;
    std::int64_t integer = 0;
    std::vector<PyValue> items;
    std::vector<std::string> keys; // Dict only
};

/// Recursive-descent parser for the header dict; every error names the source and the offset.
class HeaderParser
{
public:
    HeaderParser(std::string_view text, const std::string& what)
        : m_text(text)
        , m_what(what)
    {
    }

    PyValue parseDocument()
    {
        PyValue v = parseValue(0);
        skipSpace();
        if (m_pos != m_text.size()) {
            error("unexpected text after the dict");
        }
        return v;
    }

private:
    [[noreturn]] void error(const std::string& problem) const
    {
        fail(m_what,
            detail::concat(
                "unparsable NPY header (", problem, " at offset ", m_pos, "): ", excerpt(m_text)));
    }

    void skipSpace()
    {
        while (m_pos < m_text.size()
            && (m_text[m_pos] == ' ' || m_text[m_pos] == '\t' || m_text[m_pos] == '\n'
                || m_text[m_pos] == '\r')) {
            ++m_pos;
        }
    }

    bool consume(char c)
    {
        skipSpace();
        if (m_pos < m_text.size() && m_text[m_pos] == c) {
            ++m_pos;
            return true;
        }
        return false;
    }

    PyValue parseValue(int depth)
    {
        if (depth > 16) {
            error("nesting too deep");
        }
        skipSpace();
        if (m_pos >= m_text.size()) {
            error("unexpected end");
        }
        const char c = m_text[m_pos];
        if (c == '\'' || c == '"') {
            PyValue v;
            v.kind = PyValue::Kind::String;
            v.text = parseString();
            return v;
        }
        if (c == '{') {
            return parseDict(depth);
        }
        if (c == '(' || c == '[') {
            return parseSequence(depth);
        }
        if ((c >= '0' && c <= '9') || c == '-') {
            return parseInt();
        }
        for (const auto& [word, kind, flag] : { std::tuple { "True", PyValue::Kind::Bool, true },
                 std::tuple { "False", PyValue::Kind::Bool, false },
                 std::tuple { "None", PyValue::Kind::None, false } }) {
            const std::string_view w(word);
            if (m_text.substr(m_pos, w.size()) == w) {
                m_pos += w.size();
                PyValue v;
                v.kind = kind;
                v.flag = flag;
                return v;
            }
        }
        error(detail::concat("unexpected character '", c, "'"));
    }

    std::string parseString()
    {
        const char quote = m_text[m_pos++];
        std::string out;
        while (m_pos < m_text.size() && m_text[m_pos] != quote) {
            if (m_text[m_pos] == '\\' && m_pos + 1 < m_text.size()) {
                ++m_pos;
            }
            out += m_text[m_pos++];
        }
        if (m_pos >= m_text.size()) {
            error("unterminated string");
        }
        ++m_pos;
        return out;
    }

    PyValue parseInt()
    {
        PyValue v;
        v.kind = PyValue::Kind::Int;
        bool negative = false;
        if (m_text[m_pos] == '-') {
            negative = true;
            ++m_pos;
        }
        const std::size_t start = m_pos;
        std::int64_t value = 0;
        while (m_pos < m_text.size() && m_text[m_pos] >= '0' && m_text[m_pos] <= '9') {
            const int digit = m_text[m_pos] - '0';
            if (__builtin_mul_overflow(value, std::int64_t { 10 }, &value)
                || __builtin_add_overflow(value, std::int64_t { digit }, &value)) {
                error("integer too large");
            }
            ++m_pos;
        }
        if (m_pos == start) {
            error("digit expected");
        }
        // Python 2 wrote long integers as "3L" in old files.
        if (m_pos < m_text.size() && (m_text[m_pos] == 'L' || m_text[m_pos] == 'l')) {
            ++m_pos;
        }
        v.integer = negative ? -value : value;
        return v;
    }

    PyValue parseSequence(int depth)
    {
        const char open = m_text[m_pos++];
        const char close = open == '(' ? ')' : ']';
        PyValue v;
        v.kind = open == '(' ? PyValue::Kind::Tuple : PyValue::Kind::List;
        while (true) {
            if (consume(close)) {
                return v;
            }
            v.items.push_back(parseValue(depth + 1));
            if (consume(close)) {
                return v;
            }
            if (!consume(',')) {
                error(detail::concat("',' or '", close, "' expected"));
            }
        }
    }

    PyValue parseDict(int depth)
    {
        ++m_pos;
        PyValue v;
        v.kind = PyValue::Kind::Dict;
        while (true) {
            if (consume('}')) {
                return v;
            }
            skipSpace();
            if (m_pos >= m_text.size() || (m_text[m_pos] != '\'' && m_text[m_pos] != '"')) {
                error("string key expected");
            }
            v.keys.push_back(parseString());
            if (!consume(':')) {
                error("':' expected");
            }
            v.items.push_back(parseValue(depth + 1));
            if (consume('}')) {
                return v;
            }
            if (!consume(',')) {
                error("',' or '}' expected");
            }
        }
    }

    std::string_view m_text;
    const std::string& m_what;
    std::size_t m_pos = 0;
};

} // namespace

// ---- dtypes ----

const char* const kSupportedDtypes = "<f4 <f8 <i8 <i4 <i2 |i1 |u1 |b1, and >f4 >f8 >i8 >i4 >i2";

DType parseDtype(const std::string& descr, const std::string& what)
{
    auto unsupported = [&]() -> DType {
        fail(what,
            detail::concat("unsupported dtype '", descr, "' (supported: ", kSupportedDtypes, ")"));
    };
    if (descr.size() != 3) {
        return unsupported();
    }
    const char order = descr[0];
    if (order != '<' && order != '>' && order != '|' && order != '=') {
        return unsupported();
    }
    const std::string code = descr.substr(1);
    DType d { Element::Float32, 0, order == '>', false };
    if (code == "f4") {
        d = { Element::Float32, 4, d.bigEndian, false };
    } else if (code == "f8") {
        d = { Element::Float64, 8, d.bigEndian, false };
    } else if (code == "i8") {
        d = { Element::Int64, 8, d.bigEndian, false };
    } else if (code == "i4") {
        d = { Element::Int32, 4, d.bigEndian, false };
    } else if (code == "i2") {
        d = { Element::Int16, 2, d.bigEndian, false };
    } else if (code == "i1") {
        d = { Element::Int8, 1, false, false };
    } else if (code == "u1") {
        d = { Element::UInt8, 1, false, false };
    } else if (code == "b1") {
        d = { Element::Bool, 1, false, true };
    } else {
        return unsupported();
    }
    // '|' (no byte order) is only valid for single-byte types.
    if (order == '|' && d.itemSize != 1) {
        return unsupported();
    }
    return d;
}

std::string shapeText(const std::vector<std::int64_t>& shape)
{
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        s += std::to_string(shape[i]);
        if (shape.size() == 1) {
            s += ",";
        } else if (i + 1 < shape.size()) {
            s += ", ";
        }
    }
    return s + ")";
}

// ---- reading ----

/// Parses the fixed preamble; returns the header text length and sets the data offset.
/// `prefix` holds at least the first min(12, fileSize) bytes.
std::size_t parsePreamble(std::string_view prefix, std::size_t fileSize, const std::string& what,
    std::size_t& headerStart)
{
    if (prefix.size() < kMagic.size() || prefix.substr(0, kMagic.size()) != kMagic) {
        fail(what,
            fileSize == 0 ? "not an NPY file (the file is empty)" : "not an NPY file (bad magic)");
    }
    if (prefix.size() < 8) {
        fail(what, "truncated NPY header (no version)");
    }
    const auto major = static_cast<unsigned char>(prefix[6]);
    const auto minor = static_cast<unsigned char>(prefix[7]);
    std::size_t headerLength = 0;
    if (major == 1) {
        if (prefix.size() < 10) {
            fail(what, "truncated NPY header (no header length)");
        }
        headerLength = static_cast<unsigned char>(prefix[8])
            | (static_cast<std::size_t>(static_cast<unsigned char>(prefix[9])) << 8);
        headerStart = 10;
    } else if (major == 2 || major == 3) {
        if (prefix.size() < 12) {
            fail(what, "truncated NPY header (no header length)");
        }
        for (int i = 3; i >= 0; --i) {
            headerLength = (headerLength << 8) | static_cast<unsigned char>(prefix[8 + i]);
        }
        headerStart = 12;
    } else {
        fail(what, detail::concat("unsupported NPY format version ", int(major), ".", int(minor)));
    }
    if (headerLength > fileSize - headerStart) {
        fail(what,
            detail::concat("truncated NPY header (it claims ", headerLength,
                " bytes, the file has ", fileSize - headerStart, " after the preamble)"));
    }
    return headerLength;
}

Header parseHeaderText(std::string_view text, const std::string& what)
{
    const PyValue dict = HeaderParser(text, what).parseDocument();
    if (dict.kind != PyValue::Kind::Dict) {
        fail(what, "unparsable NPY header (not a dict): " + excerpt(text));
    }
    const PyValue* descr = nullptr;
    const PyValue* fortran = nullptr;
    const PyValue* shape = nullptr;
    for (std::size_t i = 0; i < dict.keys.size(); ++i) {
        if (dict.keys[i] == "descr") {
            descr = &dict.items[i];
        } else if (dict.keys[i] == "fortran_order") {
            fortran = &dict.items[i];
        } else if (dict.keys[i] == "shape") {
            shape = &dict.items[i];
        }
    }
    if (descr == nullptr || fortran == nullptr || shape == nullptr) {
        fail(what,
            "unparsable NPY header (it needs 'descr', 'fortran_order' and 'shape'): "
                + excerpt(text));
    }
    Header h;
    if (descr->kind != PyValue::Kind::String) {
        fail(what,
            detail::concat("unsupported dtype (structured or nested: ", excerpt(text),
                "); supported: ", kSupportedDtypes));
    }
    h.descr = descr->text;
    h.dtype = parseDtype(h.descr, what);
    if (fortran->kind != PyValue::Kind::Bool) {
        fail(what, "unparsable NPY header ('fortran_order' is not True or False)");
    }
    h.fortranOrder = fortran->flag;
    if (shape->kind != PyValue::Kind::Tuple) {
        fail(what, "unparsable NPY header ('shape' is not a tuple)");
    }
    for (const PyValue& dim : shape->items) {
        if (dim.kind != PyValue::Kind::Int || dim.integer < 0) {
            fail(what, "unparsable NPY header ('shape' must hold non-negative integers)");
        }
        h.shape.push_back(dim.integer);
    }
    if (h.shape.size() > 64) {
        fail(what, detail::concat("shape has ", h.shape.size(), " dimensions (at most 64)"));
    }
    // Checked element and byte counts: an absurd shape must fail here, before any allocation.
    std::int64_t count = 1;
    for (const std::int64_t d : h.shape) {
        if (__builtin_mul_overflow(count, d, &count)) {
            fail(what, "shape " + shapeText(h.shape) + " is too large (its size overflows)");
        }
    }
    std::int64_t bytes = 0;
    if (__builtin_mul_overflow(count, static_cast<std::int64_t>(h.dtype.itemSize), &bytes)) {
        fail(what, "shape " + shapeText(h.shape) + " is too large (its size overflows)");
    }
    h.dataBytes = static_cast<std::size_t>(bytes);
    return h;
}

} // namespace wfm::data::npy
