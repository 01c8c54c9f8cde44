#include "wfm/data/CsvTable.h"

#include "wfm/Error.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace wfm::data {
namespace {

std::string_view trim(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

/// Printable excerpt of a cell for messages (at most 40 characters, control bytes escaped).
std::string excerpt(std::string_view s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < 40; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7f) {
            out += detail::concat("\\x", std::hex, static_cast<int>(c));
        } else {
            out += static_cast<char>(c);
        }
    }
    if (s.size() > 40) {
        out += "...";
    }
    return out;
}

/// Streaming RFC 4180 tokenizer over the whole text.
class Tokenizer
{
public:
    Tokenizer(std::string_view text, char delimiter, const std::string& what)
        : m_text(text)
        , m_delim(delimiter)
        , m_what(what)
    {
    }

    bool atEnd() const { return m_pos >= m_text.size(); }
    std::size_t line() const { return m_line; }

    /// Reads one record into `fields`; returns false at the end of the input. Blank records
    /// (an empty line) come back as a single empty field.
    bool next(std::vector<std::string>& fields, std::size_t& startLine)
    {
        fields.clear();
        if (atEnd()) {
            return false;
        }
        startLine = m_line;
        std::string field;
        for (;;) {
            field.clear();
            // Skip leading blanks of an unquoted-or-quoted field.
            std::size_t p = m_pos;
            while (p < m_text.size() && (m_text[p] == ' ' || (m_text[p] == '\t' && m_delim != '\t'))) {
                ++p;
            }
            if (p < m_text.size() && m_text[p] == '"') {
                m_pos = p + 1;
                const std::size_t quoteLine = m_line;
                bool closed = false;
                while (m_pos < m_text.size()) {
                    const char c = m_text[m_pos++];
                    if (c == '"') {
                        if (m_pos < m_text.size() && m_text[m_pos] == '"') {
                            field += '"';
                            ++m_pos;
                        } else {
                            closed = true;
                            break;
                        }
                    } else {
                        if (c == '\n') {
                            ++m_line;
                        }
                        field += c;
                    }
                }
                if (!closed) {
                    throw DatasetError(detail::concat(m_what, ":", quoteLine,
                        ": unterminated quoted field (the quote opened here is never closed)"));
                }
                // Only blanks may follow the closing quote before a delimiter or line end.
                while (m_pos < m_text.size() && (m_text[m_pos] == ' ' || (m_text[m_pos] == '\t' && m_delim != '\t'))) {
                    ++m_pos;
                }
                if (m_pos < m_text.size() && m_text[m_pos] != m_delim && m_text[m_pos] != '\n'
                    && m_text[m_pos] != '\r') {
                    throw DatasetError(detail::concat(m_what, ":", m_line,
                        ": unexpected text after a closing quote: '",
                        excerpt(m_text.substr(m_pos, 20)), "'"));
                }
                fields.push_back(field);
            } else {
                std::size_t end = m_pos;
                while (end < m_text.size() && m_text[end] != m_delim && m_text[end] != '\n'
                    && m_text[end] != '\r') {
                    if (m_text[end] == '"') {
                        throw DatasetError(detail::concat(m_what, ":", m_line,
                            ": stray quote inside an unquoted field '",
                            excerpt(m_text.substr(m_pos, end - m_pos + 1)), "'"));
                    }
                    ++end;
                }
                fields.emplace_back(trim(m_text.substr(m_pos, end - m_pos)));
                m_pos = end;
            }
            if (m_pos >= m_text.size()) {
                return true;
            }
            const char c = m_text[m_pos];
            if (c == m_delim) {
                ++m_pos;
                continue;
            }
            // Line end: LF, CRLF or a lone CR.
            if (c == '\r') {
                ++m_pos;
                if (m_pos < m_text.size() && m_text[m_pos] == '\n') {
                    ++m_pos;
                }
            } else {
                ++m_pos;
            }
            ++m_line;
            return true;
        }
    }

private:
    std::string_view m_text;
    std::size_t m_pos = 0;
    std::size_t m_line = 1;
    char m_delim;
    const std::string& m_what;
};

bool isBlankRecord(const std::vector<std::string>& fields)
{
    return fields.size() == 1 && fields[0].empty();
}

} // namespace

bool isCsvMissing(std::string_view t)
{
    t = trim(t);
    return t.empty() || t == "NA" || t == "N/A" || t == "NaN" || t == "nan" || t == "null"
        || t == "None";
}

bool parseCsvNumber(std::string_view t, double& out)
{
    t = trim(t);
    if (t.empty()) {
        return false;
    }
    if (t.front() == '+') {
        t.remove_prefix(1);
        if (t.empty() || t.front() == '-' || t.front() == '+') {
            return false;
        }
    }
    const char* first = t.data();
    const char* last = t.data() + t.size();
    const auto res = std::from_chars(first, last, out, std::chars_format::general);
    if (res.ec == std::errc::result_out_of_range) {
        // Over- or underflow: keep the number's sign and magnitude class.
        double probe = 0.0;
        std::istringstream is { std::string(t) };
        is >> probe;
        out = probe;
        return !is.fail() && is.peek() == std::char_traits<char>::eof();
    }
    if (res.ec != std::errc() || res.ptr != last) {
        return false;
    }
    return !std::isnan(out);
}

CsvTable CsvTable::parse(std::string_view text, const std::string& what, const CsvOptions& options)
{
    CsvTable table;
    table.m_what = what;
    if (text.find('\0') != std::string_view::npos) {
        std::size_t line = 1 + static_cast<std::size_t>(
            std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(text.find('\0')), '\n'));
        throw DatasetError(detail::concat(what, ":", line, ": NUL byte (not a text file?)"));
    }
    if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") {
        text.remove_prefix(3);
    }
    // Skip blank and '#' comment lines before the header (line numbers still count them).
    std::size_t skippedLines = 0;
    for (;;) {
        const std::size_t eol = text.find('\n');
        const std::string_view line = text.substr(0, eol);
        const std::string_view t = trim(line.substr(0, line.size() - (line.ends_with('\r') ? 1 : 0)));
        if (!t.empty() && t.front() != '#') {
            break;
        }
        if (eol == std::string_view::npos) {
            text = {};
            break;
        }
        text.remove_prefix(eol + 1);
        ++skippedLines;
    }
    if (text.empty()) {
        throw DatasetError(what + ": empty file (no header row)");
    }
    char delim = options.delimiter;
    if (delim == '\0') {
        const std::string_view header = text.substr(0, text.find('\n'));
        std::size_t best = 0;
        delim = ',';
        for (const char c : { ',', '\t', ';' }) {
            const auto n = static_cast<std::size_t>(std::count(header.begin(), header.end(), c));
            if (n > best) {
                best = n;
                delim = c;
            }
        }
    }
    WFM_CHECK(delim != '"' && delim != '\n' && delim != '\r', "CsvTable: invalid delimiter");
    table.m_delimiter = delim;

    Tokenizer tok(text, delim, what);
    std::vector<std::string> fields;
    std::size_t startLine = 0;
    tok.next(fields, startLine);
    startLine += skippedLines;
    std::set<std::string> seen;
    for (std::size_t i = 0; i < fields.size(); ++i) {
        if (fields[i].empty()) {
            // A leading unnamed column (pandas' index) gets a name; others are errors.
            if (i == 0 && fields.size() > 1) {
                fields[i] = "index";
            } else {
                throw DatasetError(detail::concat(what, ":", startLine, ": header column ", i + 1,
                    " has an empty name"));
            }
        }
        if (!seen.insert(fields[i]).second) {
            throw DatasetError(detail::concat(
                what, ":", startLine, ": duplicate column name '", excerpt(fields[i]), "'"));
        }
    }
    table.m_names = fields;
    table.m_columns.assign(fields.size(), {});
    const std::size_t width = fields.size();
    while (tok.next(fields, startLine)) {
        if (isBlankRecord(fields) && width > 1) {
            continue;
        }
        if (fields.size() != width) {
            throw DatasetError(detail::concat(what, ":", startLine + skippedLines, ": expected ",
                width, " fields (as in the header), got ", fields.size()));
        }
        for (std::size_t c = 0; c < width; ++c) {
            table.m_columns[c].push_back(std::move(fields[c]));
        }
        table.m_rowLines.push_back(startLine + skippedLines);
    }
    return table;
}

CsvTable CsvTable::read(const std::string& path, const CsvOptions& options)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw DatasetError(path + ": cannot open file");
    }
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    if (size < 0) {
        throw DatasetError(path + ": cannot read file size");
    }
    if (static_cast<std::size_t>(size) > options.maxBytes) {
        throw DatasetError(detail::concat(
            path, ": file of ", size, " bytes exceeds the limit of ", options.maxBytes));
    }
    in.seekg(0, std::ios::beg);
    std::string text(static_cast<std::size_t>(size), '\0');
    if (!in.read(text.data(), size)) {
        throw DatasetError(path + ": read error");
    }
    return parse(text, path, options);
}

int CsvTable::columnIndex(std::string_view name) const
{
    for (std::size_t i = 0; i < m_names.size(); ++i) {
        if (m_names[i] == name) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

const std::vector<std::string>& CsvTable::strings(std::size_t col) const
{
    WFM_CHECK(col < m_columns.size(), "CsvTable: column ", col, " out of range (", m_columns.size(),
        " columns)");
    return m_columns[col];
}

bool CsvTable::isNumeric(std::size_t col) const
{
    bool any = false;
    double v = 0.0;
    for (const std::string& s : strings(col)) {
        if (parseCsvNumber(s, v)) {
            any = true;
        } else if (!isCsvMissing(s)) {
            return false;
        }
    }
    return any;
}

std::vector<double> CsvTable::numbers(std::size_t col) const
{
    const std::vector<std::string>& cells = strings(col);
    std::vector<double> out(cells.size());
    for (std::size_t r = 0; r < cells.size(); ++r) {
        if (!parseCsvNumber(cells[r], out[r])) {
            if (!isCsvMissing(cells[r])) {
                throw DatasetError(detail::concat(m_what, ":", m_rowLines[r], ": column '",
                    m_names[col], "': '", excerpt(cells[r]), "' is not a number"));
            }
            out[r] = std::nan("");
        }
    }
    return out;
}

} // namespace wfm::data
