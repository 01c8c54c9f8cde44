// Fuzz target: the torch-free CSV parser of the csv: data scheme (core/src/data/CsvTable.cpp).
// Build with that one source and core/include on the include path; seeds: tests/fuzz/corpus/csv/.
#include "wfm/Error.h"
#include "wfm/data/CsvTable.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

void exercise(std::string_view text, char delimiter)
{
    using namespace wfm::data;
    CsvOptions options;
    options.delimiter = delimiter;
    CsvTable table;
    try {
        table = CsvTable::parse(text, "fuzz.csv", options);
    } catch (const wfm::DatasetError&) {
        return; // malformed input is reported, never crashes
    }
    // The parser's promises: rectangular columns, unique non-empty names, increasing lines.
    std::size_t previousLine = 0;
    for (std::size_t r = 0; r < table.rowCount(); ++r) {
        if (table.lineOfRow(r) <= previousLine) {
            std::abort();
        }
        previousLine = table.lineOfRow(r);
    }
    for (std::size_t c = 0; c < table.columnCount(); ++c) {
        if (table.columnNames()[c].empty() || table.strings(c).size() != table.rowCount()
            || table.columnIndex(table.columnNames()[c]) != static_cast<int>(c)) {
            std::abort();
        }
        if (table.isNumeric(c)) {
            const std::vector<double> v = table.numbers(c); // must not throw for a numeric column
            if (v.size() != table.rowCount()) {
                std::abort();
            }
        } else {
            try {
                (void)table.numbers(c);
            } catch (const wfm::DatasetError&) {
            }
        }
    }
    double value = 0.0;
    for (std::size_t c = 0; c < table.columnCount() && c < 4; ++c) {
        for (const std::string& s : table.strings(c)) {
            if (parseCsvNumber(s, value) && std::isnan(value)) {
                std::abort(); // NaN is "missing", never a parsed number
            }
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    exercise(text, '\0');
    exercise(text, ';');
    return 0;
}
