#include "wfm/data/Npy.h"

#include "wfm/AtomicFile.h"
#include "wfm/Error.h"

#include "NpyHeader.h"

#include <torch/torch.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string_view>
#include <system_error>
#include <vector>

#include <sys/stat.h>

#ifdef WFM_HAVE_LIBZIP
#include <zip.h>
#endif

// NPY format reference: numpy/lib/format.py ("NEP 1"). Layout: 6-byte magic "\x93NUMPY",
// major and minor version bytes, a little-endian header length (uint16 for 1.0, uint32 for
// 2.0/3.0), the header (a Python dict literal with 'descr', 'fortran_order' and 'shape'),
// then the raw array data.

static_assert(std::endian::native == std::endian::little,
    "the NPY reader and writer assume a little-endian host");

namespace wfm::data {
namespace {

using namespace npy;

constexpr std::size_t kAlignment = 64; // numpy >= 1.14 pads the header to 64 bytes

torch::ScalarType scalarTypeOf(Element e)
{
    switch (e) {
    case Element::Float32:
        return torch::kFloat;
    case Element::Float64:
        return torch::kDouble;
    case Element::Int64:
        return torch::kLong;
    case Element::Int32:
        return torch::kInt;
    case Element::Int16:
        return torch::kShort;
    case Element::Int8:
        return torch::kChar;
    case Element::UInt8:
        return torch::kByte;
    case Element::Bool:
        return torch::kBool;
    }
    return torch::kFloat;
}

std::string descrOf(torch::ScalarType type)
{
    switch (type) {
    case torch::kFloat:
        return "<f4";
    case torch::kDouble:
        return "<f8";
    case torch::kLong:
        return "<i8";
    case torch::kInt:
        return "<i4";
    case torch::kShort:
        return "<i2";
    case torch::kChar:
        return "|i1";
    case torch::kByte:
        return "|u1";
    case torch::kBool:
        return "|b1";
    default:
        throw ConfigError(detail::concat("cannot write ", c10::toString(type),
            " as .npy (supported: float32 float64 int64 int32 int16 int8 uint8 bool)"));
    }
}

/// Checks the data fits in the file, then allocates the tensor in storage order.
torch::Tensor allocateFor(const Header& h, std::size_t available, const std::string& what)
{
    if (h.dataBytes > available) {
        fail(what,
            detail::concat("data is truncated: shape ", shapeText(h.shape), " of '", h.descr,
                "' needs ", h.dataBytes, " bytes, the file has ", available, " after the header"));
    }
    std::vector<std::int64_t> storageShape = h.shape;
    if (h.fortranOrder) {
        // A Fortran-order array is the C-order array of the reversed shape, transposed.
        std::reverse(storageShape.begin(), storageShape.end());
    }
    return torch::empty(storageShape, torch::TensorOptions().dtype(scalarTypeOf(h.dtype.element)));
}

template <typename Word> void swapWords(void* data, std::size_t count)
{
    auto* p = static_cast<unsigned char*>(data);
    for (std::size_t i = 0; i < count; ++i) {
        Word w;
        std::memcpy(&w, p + i * sizeof(Word), sizeof(Word));
        if constexpr (sizeof(Word) == 2) {
            w = __builtin_bswap16(w);
        } else if constexpr (sizeof(Word) == 4) {
            w = __builtin_bswap32(w);
        } else {
            w = __builtin_bswap64(w);
        }
        std::memcpy(p + i * sizeof(Word), &w, sizeof(Word));
    }
}

/// Byte order, bool normalisation and Fortran order, after the raw bytes were copied in.
torch::Tensor finish(torch::Tensor t, const Header& h)
{
    const auto count = static_cast<std::size_t>(t.numel());
    if (h.dtype.bigEndian && count > 0) {
        switch (h.dtype.itemSize) {
        case 2:
            swapWords<std::uint16_t>(t.data_ptr(), count);
            break;
        case 4:
            swapWords<std::uint32_t>(t.data_ptr(), count);
            break;
        case 8:
            swapWords<std::uint64_t>(t.data_ptr(), count);
            break;
        default:
            break;
        }
    }
    if (h.dtype.isBool && count > 0) {
        // Any non-zero byte is True; torch requires bool storage to hold exactly 0 or 1.
        auto* p = static_cast<unsigned char*>(t.data_ptr());
        for (std::size_t i = 0; i < count; ++i) {
            p[i] = p[i] != 0 ? 1 : 0;
        }
    }
    if (h.fortranOrder && t.dim() > 1) {
        std::vector<std::int64_t> order(static_cast<std::size_t>(t.dim()));
        for (std::size_t i = 0; i < order.size(); ++i) {
            order[i] = static_cast<std::int64_t>(order.size() - 1 - i);
        }
        t = t.permute(order).contiguous();
    }
    return t;
}

// ---- writing ----

torch::Tensor cpuContiguous(const torch::Tensor& t)
{
    if (!t.defined()) {
        throw ConfigError("cannot write an undefined tensor as .npy");
    }
    descrOf(t.scalar_type()); // validates the dtype before any copy
    return t.detach().to(torch::kCPU).contiguous();
}

std::string headerFor(const torch::Tensor& t)
{
    std::string dict = "{'descr': '" + descrOf(t.scalar_type())
        + "', 'fortran_order': False, 'shape': " + shapeText(t.sizes().vec()) + ", }";
    // Pad with spaces and a final newline so the data starts on a 64-byte boundary.
    std::size_t preamble = 10;
    std::size_t total = preamble + dict.size() + 1;
    if (total + (kAlignment - total % kAlignment) % kAlignment - preamble > 0xffff) {
        preamble = 12; // format 2.0: 32-bit header length
        total = preamble + dict.size() + 1;
    }
    dict.append((kAlignment - total % kAlignment) % kAlignment, ' ');
    dict += '\n';
    const std::size_t headerLength = dict.size();

    std::string out(kMagic);
    out += static_cast<char>(preamble == 10 ? 1 : 2);
    out += '\0';
    const int lengthBytes = preamble == 10 ? 2 : 4;
    for (int i = 0; i < lengthBytes; ++i) {
        out += static_cast<char>((headerLength >> (8 * i)) & 0xff);
    }
    return out + dict;
}

#ifdef WFM_HAVE_LIBZIP
std::string zipErrorText(int code)
{
    zip_error_t err;
    zip_error_init_with_code(&err, code);
    std::string text = zip_error_strerror(&err);
    zip_error_fini(&err);
    return text;
}

struct ZipCloser
{
    void operator()(zip_t* z) const { zip_discard(z); }
};
using ZipHandle = std::unique_ptr<zip_t, ZipCloser>;

struct ZipFileCloser
{
    void operator()(zip_file_t* f) const { zip_fclose(f); }
};
using ZipFileHandle = std::unique_ptr<zip_file_t, ZipFileCloser>;
#endif

} // namespace

torch::Tensor parseNpy(const std::string& bytes, const std::string& what)
{
    std::size_t headerStart = 0;
    const std::size_t headerLength
        = parsePreamble(std::string_view(bytes).substr(0, 12), bytes.size(), what, headerStart);
    Header h = parseHeaderText(std::string_view(bytes).substr(headerStart, headerLength), what);
    h.dataOffset = headerStart + headerLength;
    torch::Tensor t = allocateFor(h, bytes.size() - h.dataOffset, what);
    if (h.dataBytes > 0) {
        std::memcpy(t.data_ptr(), bytes.data() + h.dataOffset, h.dataBytes);
    }
    return finish(std::move(t), h);
}

torch::Tensor readNpy(const std::string& path)
{
    struct stat info
    {
    };
    if (::stat(path.c_str(), &info) != 0) {
        const int err = errno;
        fail(path, "cannot open: " + std::generic_category().message(err));
    }
    if (!S_ISREG(info.st_mode)) {
        fail(path, "cannot read: not a regular file");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const int err = errno;
        fail(path, "cannot open: " + std::generic_category().message(err));
    }
    in.seekg(0, std::ios::end);
    const std::streamoff end = in.tellg();
    in.seekg(0, std::ios::beg);
    if (end < 0 || !in) {
        fail(path, "cannot read (not a regular file?)");
    }
    const auto fileSize = static_cast<std::size_t>(end);

    std::string prefix(std::min<std::size_t>(fileSize, 12), '\0');
    if (!in.read(prefix.data(), static_cast<std::streamsize>(prefix.size()))) {
        fail(path, "cannot read the NPY preamble");
    }
    std::size_t headerStart = 0;
    const std::size_t headerLength = parsePreamble(prefix, fileSize, path, headerStart);
    std::string headerText(headerLength, '\0');
    in.seekg(static_cast<std::streamoff>(headerStart), std::ios::beg);
    if (!in.read(headerText.data(), static_cast<std::streamsize>(headerLength))) {
        fail(path, "cannot read the NPY header");
    }
    Header h = parseHeaderText(headerText, path);
    h.dataOffset = headerStart + headerLength;
    // The size check in allocateFor bounds the allocation by the file size.
    torch::Tensor t = allocateFor(h, fileSize - h.dataOffset, path);
    if (h.dataBytes > 0
        && !in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(h.dataBytes))) {
        fail(path, detail::concat("cannot read the array data (", h.dataBytes, " bytes)"));
    }
    return finish(std::move(t), h);
}

std::string serializeNpy(const torch::Tensor& t)
{
    const torch::Tensor c = cpuContiguous(t);
    std::string out = headerFor(c);
    const auto nbytes = static_cast<std::size_t>(c.numel()) * c.element_size();
    if (nbytes > 0) {
        out.append(static_cast<const char*>(c.data_ptr()), nbytes);
    }
    return out;
}

void writeNpy(const std::string& path, const torch::Tensor& t)
{
    const torch::Tensor c = cpuContiguous(t);
    AtomicFileWriter out(path);
    out.write(headerFor(c));
    const auto nbytes = static_cast<std::size_t>(c.numel()) * c.element_size();
    if (nbytes > 0) {
        out.write(c.data_ptr(), nbytes);
    }
    out.commit();
}

bool npzSupported()
{
#ifdef WFM_HAVE_LIBZIP
    return true;
#else
    return false;
#endif
}

NpzArchive readNpz(const std::string& path)
{
#ifdef WFM_HAVE_LIBZIP
    int code = 0;
    ZipHandle zip(zip_open(path.c_str(), ZIP_RDONLY, &code));
    if (!zip) {
        fail(path, "cannot open .npz archive: " + zipErrorText(code));
    }
    NpzArchive arrays;
    const zip_int64_t entries = zip_get_num_entries(zip.get(), 0);
    for (zip_int64_t i = 0; i < entries; ++i) {
        const auto index = static_cast<zip_uint64_t>(i);
        zip_stat_t st;
        zip_stat_init(&st);
        if (zip_stat_index(zip.get(), index, 0, &st) != 0 || (st.valid & ZIP_STAT_NAME) == 0) {
            fail(path, detail::concat("cannot read member ", i, ": ", zip_strerror(zip.get())));
        }
        const std::string member = st.name;
        constexpr std::string_view suffix = ".npy";
        if (member.size() <= suffix.size()
            || member.compare(member.size() - suffix.size(), suffix.size(), suffix) != 0) {
            continue;
        }
        const std::string what = path + ":" + member;
        ZipFileHandle file(zip_fopen_index(zip.get(), index, 0));
        if (!file) {
            fail(what, "cannot open member: " + std::string(zip_strerror(zip.get())));
        }
        // Read in chunks rather than trusting the size the directory claims (a corrupt or
        // malicious archive could claim any size).
        std::string bytes;
        if ((st.valid & ZIP_STAT_SIZE) != 0) {
            bytes.reserve(std::min<zip_uint64_t>(st.size, zip_uint64_t { 1 } << 26));
        }
        std::vector<char> chunk(std::size_t { 1 } << 20);
        while (true) {
            const zip_int64_t n = zip_fread(file.get(), chunk.data(), chunk.size());
            if (n < 0) {
                fail(what,
                    "cannot decompress member: " + std::string(zip_file_strerror(file.get())));
            }
            if (n == 0) {
                break;
            }
            bytes.append(chunk.data(), static_cast<std::size_t>(n));
        }
        if ((st.valid & ZIP_STAT_SIZE) != 0 && bytes.size() != st.size) {
            fail(what,
                detail::concat("member is truncated (", bytes.size(), " of ", st.size, " bytes)"));
        }
        arrays[member.substr(0, member.size() - suffix.size())] = parseNpy(bytes, what);
    }
    return arrays;
#else
    fail(path,
        "reading .npz archives needs libzip, which this build lacks (install libzip-dev "
        "and reconfigure)");
#endif
}

void writeNpz(const std::string& path, const NpzArchive& arrays, bool compress)
{
#ifdef WFM_HAVE_LIBZIP
    // Serialise first so that a bad dtype throws before anything is written. The archive is
    // assembled in memory and then written atomically like every other file we produce.
    if (arrays.empty()) {
        // libzip deletes archives left without members; np.savez() writes a bare
        // end-of-central-directory record instead, and so do we.
        writeFileAtomically(path, std::string("PK\x05\x06", 4) + std::string(18, '\0'));
        return;
    }
    std::vector<std::string> members;
    members.reserve(arrays.size());
    for (const auto& [name, tensor] : arrays) {
        if (name.empty()) {
            throw ConfigError(path + ": an .npz array name must not be empty");
        }
        members.push_back(serializeNpy(tensor));
    }

    zip_error_t error;
    zip_error_init(&error);
    zip_source_t* memory = zip_source_buffer_create(nullptr, 0, 0, &error);
    if (memory == nullptr) {
        const std::string text = zip_error_strerror(&error);
        zip_error_fini(&error);
        throw Error(detail::concat("cannot write '", path, "': ", text));
    }
    zip_source_keep(memory); // survives zip_close, which writes the archive into it
    struct SourceGuard
    {
        zip_source_t* s;
        ~SourceGuard() { zip_source_free(s); }
    } guard { memory };

    zip_t* zip = zip_open_from_source(memory, ZIP_TRUNCATE, &error);
    if (zip == nullptr) {
        const std::string text = zip_error_strerror(&error);
        zip_error_fini(&error);
        throw Error(detail::concat("cannot write '", path, "': ", text));
    }
    zip_error_fini(&error);
    auto failWith = [&](zip_t* z, const std::string& step) {
        const std::string text = zip_strerror(z);
        zip_discard(z);
        throw Error(detail::concat("cannot write '", path, "': ", step, ": ", text));
    };

    std::size_t k = 0;
    for (const auto& entry : arrays) {
        const std::string& bytes = members[k++];
        const std::string member = entry.first + ".npy";
        zip_source_t* source = zip_source_buffer(zip, bytes.data(), bytes.size(), 0);
        if (source == nullptr) {
            failWith(zip, member);
        }
        const zip_int64_t index
            = zip_file_add(zip, member.c_str(), source, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE);
        if (index < 0) {
            zip_source_free(source);
            failWith(zip, member);
        }
        if (zip_set_file_compression(
                zip, static_cast<zip_uint64_t>(index), compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0)
            != 0) {
            failWith(zip, member);
        }
    }
    if (zip_close(zip) != 0) {
        failWith(zip, "assembling the archive");
    }

    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_source_stat(memory, &st) != 0 || (st.valid & ZIP_STAT_SIZE) == 0
        || zip_source_open(memory) != 0) {
        throw Error(detail::concat("cannot write '", path,
            "': cannot read back the archive: ", zip_error_strerror(zip_source_error(memory))));
    }
    std::string archive(static_cast<std::size_t>(st.size), '\0');
    const zip_int64_t n = archive.empty() ? 0 : zip_source_read(memory, archive.data(), st.size);
    zip_source_close(memory);
    if (n < 0 || static_cast<zip_uint64_t>(n) != st.size) {
        throw Error(detail::concat("cannot write '", path, "': cannot read back the archive"));
    }
    writeFileAtomically(path, archive);
#else
    (void)arrays;
    (void)compress;
    throw DatasetError(path
        + ": writing .npz archives needs libzip, which this build lacks "
          "(install libzip-dev and reconfigure)");
#endif
}

torch::Tensor requireArray(
    const NpzArchive& arrays, const std::string& name, const std::string& file)
{
    const auto it = arrays.find(name);
    if (it != arrays.end()) {
        return it->second;
    }
    std::string names;
    for (const auto& entry : arrays) {
        names += (names.empty() ? "" : ", ") + entry.first;
    }
    throw DatasetError(detail::concat(file, ": array '", name,
        "' is missing (has: ", names.empty() ? std::string("none") : names, ")"));
}

} // namespace wfm::data
