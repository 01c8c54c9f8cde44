#include "NpzArchive.h"

#include "wfm/Error.h"
#include "wfm/data/Npy.h"

#include <torch/torch.h>

#include <cctype>
#include <cstdint>
#include <filesystem>
#include <memory>

#ifdef WFM_HAVE_LIBZIP
#include <zip.h>
#endif

namespace wfm::data::npz {

bool endsWithNoCase(const std::string& s, std::string_view suffix)
{
    if (s.size() < suffix.size()) {
        return false;
    }
    for (std::size_t i = 0; i < suffix.size(); ++i) {
        const auto a = static_cast<unsigned char>(s[s.size() - suffix.size() + i]);
        if (std::tolower(a) != suffix[i]) {
            return false;
        }
    }
    return true;
}

std::string stemOf(const std::string& path) { return std::filesystem::path(path).stem().string(); }

#ifdef WFM_HAVE_LIBZIP
namespace {
struct ZipCloser
{
    void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileCloser
{
    void operator()(zip_file_t* f) const { zip_fclose(f); }
};
} // namespace
#endif

/// Raw bytes of the members "NAME.npy" of an .npz archive whose NAME is in `wanted`, by NAME.
/// Other members are not read, so an unsupported dtype there cannot fail the load.
std::map<std::string, std::string> readNpzMembers(
    const std::string& path, const std::set<std::string>& wanted)
{
#ifdef WFM_HAVE_LIBZIP
    int code = 0;
    std::unique_ptr<zip_t, ZipCloser> zip(zip_open(path.c_str(), ZIP_RDONLY, &code));
    if (!zip) {
        zip_error_t err;
        zip_error_init_with_code(&err, code);
        const std::string text = zip_error_strerror(&err);
        zip_error_fini(&err);
        throw DatasetError(path + ": cannot open .npz archive: " + text);
    }
    std::map<std::string, std::string> out;
    const zip_int64_t entries = zip_get_num_entries(zip.get(), 0);
    for (zip_int64_t i = 0; i < entries; ++i) {
        const auto index = static_cast<zip_uint64_t>(i);
        zip_stat_t st;
        zip_stat_init(&st);
        if (zip_stat_index(zip.get(), index, 0, &st) != 0 || (st.valid & ZIP_STAT_NAME) == 0) {
            throw DatasetError(
                detail::concat(path, ": cannot read member ", i, ": ", zip_strerror(zip.get())));
        }
        const std::string member = st.name;
        if (!endsWithNoCase(member, ".npy")) {
            continue;
        }
        const std::string key = member.substr(0, member.size() - 4);
        if (wanted.count(key) == 0) {
            continue;
        }
        const std::string what = path + ":" + member;
        std::unique_ptr<zip_file_t, ZipFileCloser> file(zip_fopen_index(zip.get(), index, 0));
        if (!file) {
            throw DatasetError(what + ": cannot open member: " + zip_strerror(zip.get()));
        }
        std::string bytes;
        std::vector<char> chunk(std::size_t { 1 } << 20);
        for (;;) {
            const zip_int64_t n = zip_fread(file.get(), chunk.data(), chunk.size());
            if (n < 0) {
                throw DatasetError(
                    what + ": cannot decompress member: " + zip_file_strerror(file.get()));
            }
            if (n == 0) {
                break;
            }
            bytes.append(chunk.data(), static_cast<std::size_t>(n));
        }
        if ((st.valid & ZIP_STAT_SIZE) != 0 && bytes.size() != st.size) {
            throw DatasetError(detail::concat(
                what, ": member is truncated (", bytes.size(), " of ", st.size, " bytes)"));
        }
        out[key] = std::move(bytes);
    }
    return out;
#else
    throw DatasetError(path
        + ": reading .npz archives needs libzip, which this build lacks (install libzip-dev and "
          "reconfigure)");
#endif
}

namespace {

void appendUtf8(std::string& out, std::uint32_t cp, const std::string& what)
{
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        if (cp >= 0xD800 && cp <= 0xDFFF) {
            throw DatasetError(what + ": invalid code point (surrogate) in a name");
        }
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x110000) {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        throw DatasetError(what + ": invalid code point in a name");
    }
}

/// Reads a 1-D numpy unicode array ('<Un' or '>Un': n UTF-32 code units per element, NUL
/// padded) from .npy bytes. Returns false when the bytes hold another dtype.
bool parseUnicodeNpy(const std::string& bytes, const std::string& what,
    std::vector<std::string>& names)
{
    if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) {
        return false;
    }
    const auto major = static_cast<unsigned char>(bytes[6]);
    std::size_t headerLength = 0;
    std::size_t start = 0;
    if (major == 1) {
        headerLength = static_cast<unsigned char>(bytes[8])
            | (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
        start = 10;
    } else if (bytes.size() >= 12) {
        for (int i = 0; i < 4; ++i) {
            headerLength |= static_cast<std::size_t>(static_cast<unsigned char>(bytes[8 + i]))
                << (8 * i);
        }
        start = 12;
    } else {
        return false;
    }
    if (start + headerLength > bytes.size()) {
        throw DatasetError(what + ": truncated header");
    }
    const std::string header = bytes.substr(start, headerLength);
    auto valueAfter = [&](const char* key) -> std::size_t {
        const std::size_t k = header.find(key);
        if (k == std::string::npos) {
            return std::string::npos;
        }
        const std::size_t colon = header.find(':', k);
        return colon == std::string::npos ? colon : header.find_first_not_of(' ', colon + 1);
    };
    const std::size_t d = valueAfter("'descr'");
    if (d == std::string::npos || d >= header.size() || header[d] != '\'') {
        return false;
    }
    const std::size_t dEnd = header.find('\'', d + 1);
    const std::string descr = header.substr(d + 1, dEnd - d - 1);
    if (descr.size() < 3 || (descr[0] != '<' && descr[0] != '>') || descr[1] != 'U') {
        return false;
    }
    std::size_t width = 0;
    for (std::size_t i = 2; i < descr.size(); ++i) {
        if (!std::isdigit(static_cast<unsigned char>(descr[i]))) {
            return false;
        }
        width = width * 10 + static_cast<std::size_t>(descr[i] - '0');
    }
    const bool bigEndian = descr[0] == '>';
    const std::size_t s = valueAfter("'shape'");
    if (s == std::string::npos || header[s] != '(') {
        throw DatasetError(what + ": malformed shape in the header");
    }
    const std::size_t sEnd = header.find(')', s);
    std::vector<std::size_t> shape;
    std::size_t pos = s + 1;
    while (pos < sEnd) {
        while (pos < sEnd && (header[pos] == ' ' || header[pos] == ',')) {
            ++pos;
        }
        if (pos >= sEnd) {
            break;
        }
        std::size_t v = 0;
        bool digits = false;
        while (pos < sEnd && std::isdigit(static_cast<unsigned char>(header[pos]))) {
            v = v * 10 + static_cast<std::size_t>(header[pos] - '0');
            digits = true;
            ++pos;
        }
        if (!digits || v > (std::size_t { 1 } << 32)) {
            throw DatasetError(what + ": malformed shape in the header");
        }
        shape.push_back(v);
    }
    if (shape.size() > 1) {
        throw DatasetError(what + ": label names must be a 1-D array");
    }
    const std::size_t count = shape.empty() ? 1 : shape[0];
    const std::size_t dataStart = start + headerLength;
    if (bytes.size() - dataStart < count * width * 4) {
        throw DatasetError(what + ": too little data for the label names");
    }
    names.clear();
    for (std::size_t e = 0; e < count; ++e) {
        std::string name;
        for (std::size_t c = 0; c < width; ++c) {
            const std::size_t at = dataStart + (e * width + c) * 4;
            std::uint32_t cp = 0;
            for (int b = 0; b < 4; ++b) {
                const auto byte = static_cast<std::uint32_t>(static_cast<unsigned char>(
                    bytes[at + static_cast<std::size_t>(bigEndian ? 3 - b : b)]));
                cp |= byte << (8 * b);
            }
            if (cp == 0) {
                break; // numpy pads with NULs
            }
            appendUtf8(name, cp, what);
        }
        names.push_back(std::move(name));
    }
    return true;
}

} // namespace

std::vector<std::string> parseLabelNames(const std::string& bytes, const std::string& what)
{
    std::vector<std::string> names;
    if (parseUnicodeNpy(bytes, what, names)) {
        return names;
    }
    const torch::Tensor t = parseNpy(bytes, what);
    if (t.scalar_type() != torch::kByte && t.scalar_type() != torch::kChar) {
        throw DatasetError(detail::concat(what,
            ": label names must be a unicode array or a uint8 array of '\\n'-separated UTF-8 "
            "names, got ",
            t.scalar_type()));
    }
    const torch::Tensor c = t.reshape({ -1 }).contiguous();
    std::string text(reinterpret_cast<const char*>(c.data_ptr()), static_cast<std::size_t>(c.numel()));
    if (!text.empty() && text.back() == '\n') {
        text.pop_back();
    }
    if (text.empty()) {
        return names;
    }
    std::size_t begin = 0;
    for (;;) {
        const std::size_t end = text.find('\n', begin);
        names.push_back(text.substr(begin, end == std::string::npos ? end : end - begin));
        if (end == std::string::npos) {
            break;
        }
        begin = end + 1;
    }
    return names;
}

bool npzHasMember(const std::string& path, const std::string& name)
{
#ifdef WFM_HAVE_LIBZIP
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
        return false;
    }
    int code = 0;
    std::unique_ptr<zip_t, ZipCloser> zip(zip_open(path.c_str(), ZIP_RDONLY, &code));
    if (!zip) {
        return false;
    }
    return zip_name_locate(zip.get(), (name + ".npy").c_str(), 0) >= 0;
#else
    (void)path;
    (void)name;
    return false;
#endif
}

} // namespace wfm::data::npz
