#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

/// A small, torch-free CSV/TSV parser for cell tables (one row per cell), used by the `csv:`
/// data scheme (Niches.h) and fuzzed by tests/fuzz/fuzz_csv.cpp. Depends on the standard library
/// and wfm/Error.h only, so it can be compiled on its own.
///
/// Accepted syntax (RFC 4180 plus common variants): a header row of unique, non-empty column
/// names; fields separated by the delimiter; fields may be quoted with '"' (a doubled '""' inside
/// quotes is one quote; quoted fields may hold delimiters and newlines); LF or CRLF line ends; an
/// optional UTF-8 byte-order mark; blank lines and lines starting with '#' before the header are
/// skipped; blank lines elsewhere are skipped too. Every data row must have as many fields as the
/// header. Whitespace around unquoted fields is trimmed.
namespace wfm::data {

/// Parser settings.
struct CsvOptions
{
    /// Field separator; '\0' picks ',' , '\t' or ';' (whichever occurs most in the header line).
    char delimiter = '\0';
    /// Largest input accepted, in bytes (read() throws DatasetError beyond it).
    std::size_t maxBytes = std::size_t { 4 } << 30;
};

/// A parsed table: column names and the text of every cell, plus numeric views of the columns
/// whose every non-missing cell is a number.
class CsvTable
{
public:
    /// Parses `text`; `what` names the source in error messages (a file path).
    /// Throws wfm::DatasetError "WHAT:LINE: problem" for an unterminated quote, text after a
    /// closing quote, a row with the wrong number of fields, a missing / empty / duplicated
    /// header name, or a NUL byte.
    static CsvTable parse(std::string_view text, const std::string& what, const CsvOptions& options = {});

    /// Reads and parses the file at `path`. Throws DatasetError when it cannot be read or parsed.
    static CsvTable read(const std::string& path, const CsvOptions& options = {});

    std::size_t rowCount() const { return m_rowLines.size(); }
    std::size_t columnCount() const { return m_names.size(); }
    const std::vector<std::string>& columnNames() const { return m_names; }
    /// Index of the column named `name`, or -1.
    int columnIndex(std::string_view name) const;
    /// The delimiter that was used.
    char delimiter() const { return m_delimiter; }

    /// Cell texts of column `col` (unquoted), one per data row. Throws ConfigError for a bad index.
    const std::vector<std::string>& strings(std::size_t col) const;

    /// True when the column has at least one number and every other cell is missing (empty, "NA",
    /// "NaN", "nan", "null"); numbers are decimal floating-point ("1", "-2.5e3", "inf").
    bool isNumeric(std::size_t col) const;
    /// Values of a numeric column (missing cells are NaN). Throws DatasetError naming the column,
    /// the line and the text of the first cell that is not a number.
    std::vector<double> numbers(std::size_t col) const;

    /// 1-based line of the source where data row `row` starts (for messages).
    std::size_t lineOfRow(std::size_t row) const { return m_rowLines.at(row); }
    /// The source name given to parse() / read().
    const std::string& source() const { return m_what; }

private:
    std::string m_what;
    char m_delimiter = ',';
    std::vector<std::string> m_names;
    std::vector<std::vector<std::string>> m_columns;
    std::vector<std::size_t> m_rowLines;
};

/// Parses a whole cell as a number: returns false for anything else (trailing text included).
/// Missing markers ("", "NA", "NaN", "nan", "null") are not numbers here.
bool parseCsvNumber(std::string_view text, double& out);

/// True for the missing-value markers "", "NA", "N/A", "NaN", "nan", "null", "None".
bool isCsvMissing(std::string_view text);

} // namespace wfm::data
