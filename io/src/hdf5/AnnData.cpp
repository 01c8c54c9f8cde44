#include "wfm/io/AnnData.h"

#include "Registration.h"

#include "wfm/Error.h"
#include "wfm/data/DataSpec.h"

#include <torch/torch.h>

#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <sstream>

namespace wfm::io {
namespace {

// ---- HDF5 plumbing ----

std::mutex& hdf5Mutex()
{
    static std::mutex m;
    return m;
}

/// Owns an HDF5 identifier and closes it with the right function.
class Id
{
public:
    using Closer = herr_t (*)(hid_t);
    Id() = default;
    Id(hid_t id, Closer closer)
        : m_id(id)
        , m_close(closer)
    {
    }
    Id(const Id&) = delete;
    Id& operator=(const Id&) = delete;
    Id(Id&& o) noexcept
        : m_id(o.m_id)
        , m_close(o.m_close)
    {
        o.m_id = H5I_INVALID_HID;
    }
    Id& operator=(Id&& o) noexcept
    {
        if (this != &o) {
            reset();
            m_id = o.m_id;
            m_close = o.m_close;
            o.m_id = H5I_INVALID_HID;
        }
        return *this;
    }
    ~Id() { reset(); }
    void reset()
    {
        if (m_id >= 0 && m_close) {
            m_close(m_id);
        }
        m_id = H5I_INVALID_HID;
    }
    hid_t get() const { return m_id; }
    bool valid() const { return m_id >= 0; }

private:
    hid_t m_id = H5I_INVALID_HID;
    Closer m_close = nullptr;
};

herr_t collectError(unsigned n, const H5E_error2_t* err, void* data)
{
    auto* out = static_cast<std::string*>(data);
    if (n == 0 && err && err->desc) {
        *out = err->desc;
    }
    return 0;
}

/// The innermost message of HDF5's current error stack (and clears it).
std::string hdf5Message()
{
    std::string msg;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collectError, &msg);
    H5Eclear2(H5E_DEFAULT);
    return msg.empty() ? std::string() : " (HDF5: " + msg + ")";
}

/// Turns HDF5's automatic error printing off for its lifetime.
class QuietErrors
{
public:
    QuietErrors()
    {
        H5Eget_auto2(H5E_DEFAULT, &m_func, &m_data);
        H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    }
    ~QuietErrors() { H5Eset_auto2(H5E_DEFAULT, m_func, m_data); }

private:
    H5E_auto2_t m_func = nullptr;
    void* m_data = nullptr;
};

/// Reading context: the file and its name, for messages.
struct Reader
{
    std::string file;
    Id fid;

    [[noreturn]] void fail(const std::string& field, const std::string& problem) const
    {
        throw DatasetError(file + ": " + field + ": " + problem);
    }
    [[noreturn]] void failHdf5(const std::string& field, const std::string& action) const
    {
        fail(field, action + hdf5Message());
    }

    /// True when every component of `path` ("/obs/cell_type/codes") exists.
    bool exists(const std::string& path) const
    {
        std::string sofar;
        std::stringstream ss(path);
        std::string part;
        while (std::getline(ss, part, '/')) {
            if (part.empty()) {
                continue;
            }
            sofar += "/" + part;
            const htri_t e = H5Lexists(fid.get(), sofar.c_str(), H5P_DEFAULT);
            if (e <= 0) {
                H5Eclear2(H5E_DEFAULT);
                return false;
            }
            // A dataset has no children: stop descending into one.
            const H5I_type_t t = objectType(sofar);
            if (t != H5I_GROUP && sofar.size() < path.size()) {
                return false;
            }
        }
        return true;
    }

    H5I_type_t objectType(const std::string& path) const
    {
        Id o(H5Oopen(fid.get(), path.c_str(), H5P_DEFAULT), H5Oclose);
        if (!o.valid()) {
            H5Eclear2(H5E_DEFAULT);
            return H5I_BADID;
        }
        return H5Iget_type(o.get());
    }

    Id openDataset(const std::string& path) const
    {
        Id d(H5Dopen2(fid.get(), path.c_str(), H5P_DEFAULT), H5Dclose);
        if (!d.valid()) {
            failHdf5(path, "cannot open dataset");
        }
        return d;
    }

    /// Children of a group, in creation or name order.
    std::vector<std::string> children(const std::string& path) const
    {
        Id g(H5Gopen2(fid.get(), path.c_str(), H5P_DEFAULT), H5Gclose);
        if (!g.valid()) {
            failHdf5(path, "cannot open group");
        }
        H5G_info_t info;
        if (H5Gget_info(g.get(), &info) < 0) {
            failHdf5(path, "cannot list group");
        }
        std::vector<std::string> out;
        for (hsize_t i = 0; i < info.nlinks; ++i) {
            const ssize_t n = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
            if (n < 0) {
                failHdf5(path, "cannot read a member name");
            }
            std::string name(static_cast<std::size_t>(n), '\0');
            H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(),
                static_cast<std::size_t>(n) + 1, H5P_DEFAULT);
            out.push_back(name);
        }
        return out;
    }

    std::vector<hsize_t> shape(hid_t dset, const std::string& path) const
    {
        Id space(H5Dget_space(dset), H5Sclose);
        const int rank = H5Sget_simple_extent_ndims(space.get());
        if (rank < 0) {
            failHdf5(path, "cannot read the shape");
        }
        std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
        H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
        return dims;
    }

    // ---- attributes ----

    bool hasAttr(const std::string& path, const char* name) const
    {
        const htri_t e = H5Aexists_by_name(fid.get(), path.c_str(), name, H5P_DEFAULT);
        if (e < 0) {
            H5Eclear2(H5E_DEFAULT);
        }
        return e > 0;
    }

    /// Strings of a string attribute (scalar or 1-D; variable or fixed length).
    std::vector<std::string> attrStrings(const std::string& path, const char* name) const
    {
        const std::string field = path + "@" + name;
        Id a(H5Aopen_by_name(fid.get(), path.c_str(), name, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
        if (!a.valid()) {
            failHdf5(field, "cannot open attribute");
        }
        Id ftype(H5Aget_type(a.get()), H5Tclose);
        Id space(H5Aget_space(a.get()), H5Sclose);
        const hssize_t n = H5Sget_simple_extent_npoints(space.get());
        if (H5Tget_class(ftype.get()) != H5T_STRING) {
            if (n == 0) {
                return {}; // anndata writes an empty column-order as an empty float array
            }
            fail(field, "is not a string attribute");
        }
        std::vector<std::string> out;
        if (H5Tis_variable_str(ftype.get()) > 0) {
            std::vector<char*> ptrs(static_cast<std::size_t>(n), nullptr);
            Id mtype(H5Tcopy(H5T_C_S1), H5Tclose);
            H5Tset_size(mtype.get(), H5T_VARIABLE);
            H5Tset_cset(mtype.get(), H5Tget_cset(ftype.get()));
            if (H5Aread(a.get(), mtype.get(), ptrs.data()) < 0) {
                failHdf5(field, "cannot read attribute");
            }
            for (char* p : ptrs) {
                out.emplace_back(p ? p : "");
            }
#if H5_VERSION_GE(1, 12, 0)
            H5Treclaim(mtype.get(), space.get(), H5P_DEFAULT, ptrs.data());
#else
            H5Dvlen_reclaim(mtype.get(), space.get(), H5P_DEFAULT, ptrs.data());
#endif
        } else {
            const std::size_t size = H5Tget_size(ftype.get());
            std::vector<char> buf(size * static_cast<std::size_t>(n) + 1, '\0');
            Id mtype(H5Tcopy(ftype.get()), H5Tclose);
            if (H5Aread(a.get(), mtype.get(), buf.data()) < 0) {
                failHdf5(field, "cannot read attribute");
            }
            for (hssize_t i = 0; i < n; ++i) {
                const char* p = buf.data() + static_cast<std::size_t>(i) * size;
                out.emplace_back(p, strnlen(p, size));
            }
        }
        return out;
    }

    std::string attrString(const std::string& path, const char* name) const
    {
        const auto v = attrStrings(path, name);
        return v.empty() ? std::string() : v[0];
    }

    std::vector<std::int64_t> attrInts(const std::string& path, const char* name) const
    {
        const std::string field = path + "@" + name;
        Id a(H5Aopen_by_name(fid.get(), path.c_str(), name, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
        if (!a.valid()) {
            failHdf5(field, "cannot open attribute");
        }
        Id ftype(H5Aget_type(a.get()), H5Tclose);
        const H5T_class_t cls = H5Tget_class(ftype.get());
        if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
            fail(field, "is not a numeric attribute");
        }
        Id space(H5Aget_space(a.get()), H5Sclose);
        std::vector<std::int64_t> out(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.get())));
        if (H5Aread(a.get(), H5T_NATIVE_INT64, out.data()) < 0) {
            failHdf5(field, "cannot read attribute");
        }
        return out;
    }

    // ---- datasets ----

    /// Strings of a 1-D string dataset (variable or fixed length).
    std::vector<std::string> readStrings(const std::string& path) const
    {
        Id d = openDataset(path);
        Id ftype(H5Dget_type(d.get()), H5Tclose);
        if (H5Tget_class(ftype.get()) != H5T_STRING) {
            fail(path, "expected strings, found another type");
        }
        Id space(H5Dget_space(d.get()), H5Sclose);
        const hssize_t n = H5Sget_simple_extent_npoints(space.get());
        std::vector<std::string> out;
        out.reserve(static_cast<std::size_t>(n));
        if (H5Tis_variable_str(ftype.get()) > 0) {
            std::vector<char*> ptrs(static_cast<std::size_t>(n), nullptr);
            Id mtype(H5Tcopy(H5T_C_S1), H5Tclose);
            H5Tset_size(mtype.get(), H5T_VARIABLE);
            H5Tset_cset(mtype.get(), H5Tget_cset(ftype.get()));
            if (H5Dread(d.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0) {
                failHdf5(path, "cannot read strings");
            }
            for (char* p : ptrs) {
                out.emplace_back(p ? p : "");
            }
#if H5_VERSION_GE(1, 12, 0)
            H5Treclaim(mtype.get(), space.get(), H5P_DEFAULT, ptrs.data());
#else
            H5Dvlen_reclaim(mtype.get(), space.get(), H5P_DEFAULT, ptrs.data());
#endif
        } else {
            const std::size_t size = H5Tget_size(ftype.get());
            std::vector<char> buf(size * static_cast<std::size_t>(n) + 1, '\0');
            Id mtype(H5Tcopy(ftype.get()), H5Tclose);
            if (H5Dread(d.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0) {
                failHdf5(path, "cannot read strings");
            }
            for (hssize_t i = 0; i < n; ++i) {
                const char* p = buf.data() + static_cast<std::size_t>(i) * size;
                out.emplace_back(p, strnlen(p, size));
            }
        }
        return out;
    }

    /// Values of a numeric (integer, float, boolean enum) dataset, converted to T by HDF5.
    template <typename T>
    std::vector<T> readNumbers(const std::string& path, hid_t memType) const
    {
        Id d = openDataset(path);
        Id ftype(H5Dget_type(d.get()), H5Tclose);
        Id space(H5Dget_space(d.get()), H5Sclose);
        const auto n = static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.get()));
        std::vector<T> out(n);
        const H5T_class_t cls = H5Tget_class(ftype.get());
        if (cls == H5T_ENUM) {
            // numpy bools (h5py enums over int8): read the base integers.
            Id base(H5Tget_super(ftype.get()), H5Tclose);
            Id nbase(H5Tget_native_type(base.get(), H5T_DIR_ASCEND), H5Tclose);
            Id penum(H5Tenum_create(nbase.get()), H5Tclose);
            const int members = H5Tget_nmembers(ftype.get());
            std::vector<unsigned char> value(H5Tget_size(ftype.get()) + 8);
            for (int i = 0; i < members; ++i) {
                char* name = H5Tget_member_name(ftype.get(), static_cast<unsigned>(i));
                H5Tget_member_value(ftype.get(), static_cast<unsigned>(i), value.data());
                H5Tenum_insert(penum.get(), name, value.data());
                H5free_memory(name);
            }
            const std::size_t size = H5Tget_size(nbase.get());
            std::vector<unsigned char> raw(size * n);
            if (H5Dread(d.get(), penum.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) < 0) {
                failHdf5(path, "cannot read boolean/enum values");
            }
            const bool isSigned = H5Tget_sign(nbase.get()) == H5T_SGN_2;
            for (std::size_t i = 0; i < n; ++i) {
                std::int64_t v = 0;
                const unsigned char* p = raw.data() + i * size;
                if (size == 1) {
                    v = isSigned ? static_cast<std::int64_t>(static_cast<std::int8_t>(*p)) : *p;
                } else if (size == 2) {
                    std::int16_t s16;
                    std::memcpy(&s16, p, 2);
                    v = isSigned ? s16 : static_cast<std::uint16_t>(s16);
                } else if (size == 4) {
                    std::int32_t s32;
                    std::memcpy(&s32, p, 4);
                    v = isSigned ? s32 : static_cast<std::uint32_t>(s32);
                } else {
                    std::memcpy(&v, p, 8);
                }
                out[i] = static_cast<T>(v);
            }
            return out;
        }
        if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
            fail(path, "expected numbers, found another type");
        }
        if (n > 0 && H5Dread(d.get(), memType, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
            failHdf5(path, "cannot read values");
        }
        return out;
    }

    /// A 2-D numeric dataset as float32 [rows, cols] (HDF5 converts the stored type).
    torch::Tensor readMatrix(const std::string& path) const
    {
        Id d = openDataset(path);
        Id ftype(H5Dget_type(d.get()), H5Tclose);
        const H5T_class_t cls = H5Tget_class(ftype.get());
        if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
            fail(path, "expected a numeric array");
        }
        const std::vector<hsize_t> dims = shape(d.get(), path);
        if (dims.size() != 2) {
            fail(path, ::wfm::detail::concat("expected a 2-D array, found ", dims.size(), " dimensions"));
        }
        checkDenseSize(path, dims[0], dims[1]);
        torch::Tensor out = torch::empty({ static_cast<std::int64_t>(dims[0]), static_cast<std::int64_t>(dims[1]) }, torch::kFloat);
        if (out.numel() > 0
            && H5Dread(d.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr<float>()) < 0) {
            failHdf5(path, "cannot read values");
        }
        return out;
    }

    void checkDenseSize(const std::string& path, hsize_t rows, hsize_t cols) const
    {
        if (rows != 0 && cols > (hsize_t { 1 } << 31) / rows) {
            fail(path, ::wfm::detail::concat("dense size ", rows, " x ", cols,
                " exceeds 2^31 entries (use an obsm representation, e.g. rep=X_pca)"));
        }
    }

    void checkFinite(const torch::Tensor& t, const std::string& path) const
    {
        if (t.numel() > 0 && !torch::isfinite(t).all().item<bool>()) {
            const auto flat = (~torch::isfinite(t.reshape({ -1 }))).nonzero()[0][0].item<std::int64_t>();
            const std::int64_t cols = t.dim() == 2 ? t.size(1) : 1;
            fail(path, ::wfm::detail::concat("non-finite value (NaN or inf) at row ", flat / cols,
                t.dim() == 2 ? ::wfm::detail::concat(", column ", flat % cols) : std::string()));
        }
    }
};

/// Encoding of a group or dataset: its encoding-type attribute, "" when absent.
std::string encodingOf(const Reader& r, const std::string& path)
{
    if (r.hasAttr(path, "encoding-type")) {
        return r.attrString(path, "encoding-type");
    }
    if (r.hasAttr(path, "h5sparse_format")) {
        const std::string f = r.attrString(path, "h5sparse_format");
        return f == "csc" ? "csc_matrix" : "csr_matrix";
    }
    return {};
}

/// X as a dense float32 [nObs, nVars] tensor; nObs / nVars < 0 mean "take them from X".
torch::Tensor readX(const Reader& r, std::int64_t& nObs, std::int64_t& nVars)
{
    if (!r.exists("/X")) {
        r.fail("/X", "missing (no expression matrix in this file)");
    }
    torch::Tensor X;
    if (r.objectType("/X") == H5I_DATASET) {
        X = r.readMatrix("/X");
    } else {
        const std::string enc = encodingOf(r, "/X");
        if (enc != "csr_matrix" && enc != "csc_matrix") {
            r.fail("/X", "a group that is not a csr_matrix / csc_matrix (encoding-type '" + enc + "')");
        }
        const bool csr = enc == "csr_matrix";
        std::vector<std::int64_t> shp;
        if (r.hasAttr("/X", "shape")) {
            shp = r.attrInts("/X", "shape");
        } else if (r.hasAttr("/X", "h5sparse_shape")) {
            shp = r.attrInts("/X", "h5sparse_shape");
        } else {
            r.fail("/X", "sparse matrix without a shape attribute");
        }
        if (shp.size() != 2 || shp[0] < 0 || shp[1] < 0) {
            r.fail("/X@shape", "must hold two non-negative sizes");
        }
        for (const char* m : { "/X/data", "/X/indices", "/X/indptr" }) {
            if (!r.exists(m)) {
                r.fail(m, "missing (sparse X needs data, indices and indptr)");
            }
        }
        const std::int64_t rows = shp[0];
        const std::int64_t cols = shp[1];
        r.checkDenseSize("/X", static_cast<hsize_t>(rows), static_cast<hsize_t>(cols));
        const std::int64_t major = csr ? rows : cols;
        const std::int64_t minor = csr ? cols : rows;
        const auto indptr = r.readNumbers<std::int64_t>("/X/indptr", H5T_NATIVE_INT64);
        const auto indices = r.readNumbers<std::int64_t>("/X/indices", H5T_NATIVE_INT64);
        const auto values = r.readNumbers<float>("/X/data", H5T_NATIVE_FLOAT);
        if (static_cast<std::int64_t>(indptr.size()) != major + 1) {
            r.fail("/X/indptr", ::wfm::detail::concat("has ", indptr.size(), " entries, expected ", major + 1,
                " for shape (", rows, ", ", cols, ")"));
        }
        if (indices.size() != values.size()) {
            r.fail("/X/indices", ::wfm::detail::concat("has ", indices.size(), " entries but /X/data has ", values.size()));
        }
        if (indptr[0] != 0 || indptr.back() != static_cast<std::int64_t>(values.size())) {
            r.fail("/X/indptr", ::wfm::detail::concat("must start at 0 and end at nnz = ", values.size(),
                " (got ", indptr[0], " .. ", indptr.back(), ")"));
        }
        for (std::size_t i = 1; i < indptr.size(); ++i) {
            if (indptr[i] < indptr[i - 1]) {
                r.fail("/X/indptr", ::wfm::detail::concat("decreases at entry ", i));
            }
        }
        X = torch::zeros({ rows, cols }, torch::kFloat);
        auto* x = X.data_ptr<float>();
        for (std::int64_t a = 0; a < major; ++a) {
            for (std::int64_t j = indptr[static_cast<std::size_t>(a)]; j < indptr[static_cast<std::size_t>(a) + 1]; ++j) {
                const std::int64_t b = indices[static_cast<std::size_t>(j)];
                if (b < 0 || b >= minor) {
                    r.fail("/X/indices", ::wfm::detail::concat("index ", b, " at position ", j,
                        " out of range [0, ", minor, ")"));
                }
                const float v = values[static_cast<std::size_t>(j)];
                if (!std::isfinite(v)) {
                    r.fail("/X/data", ::wfm::detail::concat("non-finite value (NaN or inf) at position ", j));
                }
                x[csr ? a * cols + b : b * cols + a] += v;
            }
        }
    }
    if (X.dim() != 2) {
        r.fail("/X", "must be 2-D");
    }
    r.checkFinite(X, "/X");
    if (nObs >= 0 && X.size(0) != nObs) {
        r.fail("/X", ::wfm::detail::concat("has ", X.size(0), " rows but obs has ", nObs, " cells"));
    }
    if (nVars >= 0 && X.size(1) != nVars) {
        r.fail("/X", ::wfm::detail::concat("has ", X.size(1), " columns but var has ", nVars, " genes"));
    }
    nObs = X.size(0);
    nVars = X.size(1);
    return X;
}

AnnDataColumn categorical(const Reader& r, std::vector<std::int64_t> codes,
    std::vector<std::string> categories, const std::string& codesPath)
{
    const auto n = static_cast<std::int64_t>(categories.size());
    for (std::size_t i = 0; i < codes.size(); ++i) {
        if (codes[i] < -1 || codes[i] >= n) {
            r.fail(codesPath, ::wfm::detail::concat("code ", codes[i], " at row ", i, " out of range [-1, ", n,
                ") (", n, " categories)"));
        }
    }
    AnnDataColumn c;
    c.kind = AnnDataColumn::Kind::Categorical;
    c.codes = std::move(codes);
    c.categories = std::move(categories);
    return c;
}

/// Categories of a categorical: strings, or numbers formatted as text.
std::vector<std::string> readCategories(const Reader& r, const std::string& path)
{
    Id d = r.openDataset(path);
    Id t(H5Dget_type(d.get()), H5Tclose);
    if (H5Tget_class(t.get()) == H5T_STRING) {
        return r.readStrings(path);
    }
    AnnDataColumn tmp;
    tmp.numbers = r.readNumbers<double>(path, H5T_NATIVE_DOUBLE);
    return tmp.asText();
}

/// One dataset column (numeric or text) of a dataframe group.
AnnDataColumn datasetColumn(const Reader& r, const std::string& path)
{
    Id d = r.openDataset(path);
    Id t(H5Dget_type(d.get()), H5Tclose);
    AnnDataColumn c;
    const H5T_class_t cls = H5Tget_class(t.get());
    if (cls == H5T_STRING) {
        c.kind = AnnDataColumn::Kind::Text;
        c.texts = r.readStrings(path);
    } else if (cls == H5T_INTEGER || cls == H5T_FLOAT || cls == H5T_ENUM) {
        c.kind = AnnDataColumn::Kind::Numeric;
        c.numbers = r.readNumbers<double>(path, H5T_NATIVE_DOUBLE);
    } else {
        r.fail(path, "unsupported column type (not numeric, boolean or string)");
    }
    return c;
}

/// A column of a dataframe group (anndata >= 0.7).
AnnDataColumn groupColumn(const Reader& r, const std::string& df, const std::string& name)
{
    const std::string path = df + "/" + name;
    if (r.objectType(path) == H5I_DATASET) {
        // anndata 0.7: integer codes with categories in __categories/<name>.
        const std::string cats = df + "/__categories/" + name;
        if (r.exists(cats)) {
            return categorical(r, r.readNumbers<std::int64_t>(path, H5T_NATIVE_INT64),
                readCategories(r, cats), path);
        }
        return datasetColumn(r, path);
    }
    const std::string enc = encodingOf(r, path);
    if (enc == "categorical" || (enc.empty() && r.exists(path + "/codes"))) {
        if (!r.exists(path + "/codes")) {
            r.fail(path + "/codes", "missing (categorical column)");
        }
        if (!r.exists(path + "/categories")) {
            r.fail(path + "/categories", "missing (categorical column)");
        }
        return categorical(r, r.readNumbers<std::int64_t>(path + "/codes", H5T_NATIVE_INT64),
            readCategories(r, path + "/categories"), path + "/codes");
    }
    if (enc == "nullable-integer" || enc == "nullable-boolean" || enc == "nullable-string-array") {
        AnnDataColumn c = datasetColumn(r, path + "/values");
        const auto mask = r.readNumbers<std::int64_t>(path + "/mask", H5T_NATIVE_INT64);
        if (mask.size() != c.size()) {
            r.fail(path + "/mask", "length differs from values");
        }
        for (std::size_t i = 0; i < mask.size(); ++i) {
            if (mask[i] != 0) {
                if (c.kind == AnnDataColumn::Kind::Numeric) {
                    c.numbers[i] = std::nan("");
                } else {
                    c.texts[i].clear();
                }
            }
        }
        return c;
    }
    r.fail(path, "unsupported column encoding '" + enc + "'");
}

/// Reads a dataframe group (obs / var): index names and (when wanted) columns.
void readDataframeGroup(const Reader& r, const std::string& df, std::vector<std::string>& index,
    std::map<std::string, AnnDataColumn>* columns, std::vector<std::string>* order)
{
    std::string indexName = "_index";
    if (r.hasAttr(df, "_index")) {
        indexName = r.attrString(df, "_index");
    } else if (!r.exists(df + "/_index") && r.exists(df + "/index")) {
        indexName = "index";
    }
    const std::string indexPath = df + "/" + indexName;
    if (r.exists(indexPath)) {
        const AnnDataColumn idx = groupColumn(r, df, indexName);
        index = idx.asText();
    }
    if (!columns) {
        return;
    }
    std::vector<std::string> names;
    if (r.hasAttr(df, "column-order")) {
        names = r.attrStrings(df, "column-order");
    } else {
        for (const std::string& c : r.children(df)) {
            if (c != indexName && c != "__categories") {
                names.push_back(c);
            }
        }
    }
    for (const std::string& name : names) {
        if (!r.exists(df + "/" + name)) {
            r.fail(df + "/" + name, "listed in column-order but missing");
        }
        (*columns)[name] = groupColumn(r, df, name);
        order->push_back(name);
    }
}

/// Reads a compound-dataset dataframe (anndata <= 0.6).
void readDataframeCompound(const Reader& r, const std::string& df, std::vector<std::string>& index,
    std::map<std::string, AnnDataColumn>* columns, std::vector<std::string>* order)
{
    Id d = r.openDataset(df);
    Id ftype(H5Dget_type(d.get()), H5Tclose);
    if (H5Tget_class(ftype.get()) != H5T_COMPOUND) {
        r.fail(df, "expected a group or a compound dataset");
    }
    Id space(H5Dget_space(d.get()), H5Sclose);
    const auto n = static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.get()));
    const int members = H5Tget_nmembers(ftype.get());
    for (int m = 0; m < members; ++m) {
        char* raw = H5Tget_member_name(ftype.get(), static_cast<unsigned>(m));
        const std::string name = raw;
        H5free_memory(raw);
        const std::string field = df + "." + name;
        Id mt(H5Tget_member_type(ftype.get(), static_cast<unsigned>(m)), H5Tclose);
        const H5T_class_t cls = H5Tget_class(mt.get());
        AnnDataColumn c;
        if (cls == H5T_STRING) {
            c.kind = AnnDataColumn::Kind::Text;
            const bool vlen = H5Tis_variable_str(mt.get()) > 0;
            Id st(H5Tcopy(H5T_C_S1), H5Tclose);
            const std::size_t size = vlen ? sizeof(char*) : H5Tget_size(mt.get());
            if (vlen) {
                H5Tset_size(st.get(), H5T_VARIABLE);
            } else {
                H5Tset_size(st.get(), size);
                H5Tset_strpad(st.get(), H5Tget_strpad(mt.get()));
            }
            H5Tset_cset(st.get(), H5Tget_cset(mt.get()));
            Id ct(H5Tcreate(H5T_COMPOUND, size), H5Tclose);
            H5Tinsert(ct.get(), name.c_str(), 0, st.get());
            std::vector<char> buf(size * n + 1, '\0');
            if (n > 0 && H5Dread(d.get(), ct.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0) {
                r.failHdf5(field, "cannot read field");
            }
            for (std::size_t i = 0; i < n; ++i) {
                if (vlen) {
                    char* p = nullptr;
                    std::memcpy(&p, buf.data() + i * size, sizeof(char*));
                    c.texts.emplace_back(p ? p : "");
                } else {
                    const char* p = buf.data() + i * size;
                    c.texts.emplace_back(p, strnlen(p, size));
                }
            }
            if (vlen && n > 0) {
#if H5_VERSION_GE(1, 12, 0)
                H5Treclaim(ct.get(), space.get(), H5P_DEFAULT, buf.data());
#else
                H5Dvlen_reclaim(ct.get(), space.get(), H5P_DEFAULT, buf.data());
#endif
            }
        } else if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
            c.kind = AnnDataColumn::Kind::Numeric;
            Id ct(H5Tcreate(H5T_COMPOUND, sizeof(double)), H5Tclose);
            H5Tinsert(ct.get(), name.c_str(), 0, H5T_NATIVE_DOUBLE);
            c.numbers.resize(n);
            if (n > 0 && H5Dread(d.get(), ct.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, c.numbers.data()) < 0) {
                r.failHdf5(field, "cannot read field");
            }
        } else {
            continue; // enums, arrays, ...: not needed for niches
        }
        if (name == "index" || name == "_index") {
            index = c.asText();
            continue;
        }
        if (!columns) {
            continue;
        }
        // Categorical columns: codes here, categories in uns/<name>_categories.
        const std::string cats = "/uns/" + name + "_categories";
        if (c.kind == AnnDataColumn::Kind::Numeric && r.exists(cats)) {
            std::vector<std::int64_t> codes(n);
            for (std::size_t i = 0; i < n; ++i) {
                codes[i] = static_cast<std::int64_t>(c.numbers[i]);
            }
            c = categorical(r, std::move(codes), readCategories(r, cats), field);
        }
        (*columns)[name] = std::move(c);
        order->push_back(name);
    }
}

void readDataframe(const Reader& r, const std::string& df, std::vector<std::string>& index,
    std::map<std::string, AnnDataColumn>* columns, std::vector<std::string>* order)
{
    if (r.objectType(df) == H5I_GROUP) {
        readDataframeGroup(r, df, index, columns, order);
    } else {
        readDataframeCompound(r, df, index, columns, order);
    }
}

/// One dense obsm array as [nObs, d] (a stored [d, nObs] array is transposed).
torch::Tensor readObsmArray(const Reader& r, const std::string& path, std::int64_t nObs)
{
    torch::Tensor a = r.readMatrix(path);
    if (a.size(0) != nObs) {
        if (a.size(1) == nObs) {
            a = a.t().contiguous();
        } else {
            r.fail(path, ::wfm::detail::concat("shape (", a.size(0), ", ", a.size(1), ") does not match ",
                nObs, " cells"));
        }
    }
    r.checkFinite(a, path);
    return a;
}

/// obsm as a compound dataset of array fields (anndata <= 0.6).
void readObsmCompound(const Reader& r, std::int64_t nObs, const AnnDataReadOptions& o,
    std::map<std::string, torch::Tensor>& out)
{
    Id d = r.openDataset("/obsm");
    Id ftype(H5Dget_type(d.get()), H5Tclose);
    if (H5Tget_class(ftype.get()) != H5T_COMPOUND) {
        r.fail("/obsm", "expected a group or a compound dataset");
    }
    Id space(H5Dget_space(d.get()), H5Sclose);
    const auto n = H5Sget_simple_extent_npoints(space.get());
    if (n != nObs) {
        r.fail("/obsm", ::wfm::detail::concat("has ", n, " rows but obs has ", nObs, " cells"));
    }
    const int members = H5Tget_nmembers(ftype.get());
    for (int m = 0; m < members; ++m) {
        char* raw = H5Tget_member_name(ftype.get(), static_cast<unsigned>(m));
        const std::string name = raw;
        H5free_memory(raw);
        if (!o.allObsm && std::find(o.obsm.begin(), o.obsm.end(), name) == o.obsm.end()) {
            continue;
        }
        Id mt(H5Tget_member_type(ftype.get(), static_cast<unsigned>(m)), H5Tclose);
        std::int64_t width = 1;
        if (H5Tget_class(mt.get()) == H5T_ARRAY) {
            const int rank = H5Tget_array_ndims(mt.get());
            std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
            H5Tget_array_dims2(mt.get(), dims.data());
            for (const hsize_t v : dims) {
                width *= static_cast<std::int64_t>(v);
            }
        } else if (H5Tget_class(mt.get()) != H5T_FLOAT && H5Tget_class(mt.get()) != H5T_INTEGER) {
            continue;
        }
        const hsize_t adims[1] = { static_cast<hsize_t>(width) };
        Id at(H5Tarray_create2(H5T_NATIVE_FLOAT, 1, adims), H5Tclose);
        Id ct(H5Tcreate(H5T_COMPOUND, sizeof(float) * static_cast<std::size_t>(width)), H5Tclose);
        H5Tinsert(ct.get(), name.c_str(), 0, width == 1 && H5Tget_class(mt.get()) != H5T_ARRAY ? H5T_NATIVE_FLOAT : at.get());
        torch::Tensor t = torch::empty({ nObs, width }, torch::kFloat);
        if (nObs > 0 && H5Dread(d.get(), ct.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr<float>()) < 0) {
            r.failHdf5("/obsm." + name, "cannot read field");
        }
        r.checkFinite(t, "/obsm." + name);
        out[name] = t;
    }
}

} // namespace

std::size_t AnnDataColumn::size() const
{
    switch (kind) {
    case Kind::Numeric:
        return numbers.size();
    case Kind::Text:
        return texts.size();
    case Kind::Categorical:
        return codes.size();
    }
    return 0;
}

std::vector<std::string> AnnDataColumn::asText() const
{
    std::vector<std::string> out;
    out.reserve(size());
    switch (kind) {
    case Kind::Numeric:
        for (const double v : numbers) {
            if (std::isnan(v)) {
                out.emplace_back();
            } else if (v == std::floor(v) && std::fabs(v) < 1e15) {
                out.push_back(std::to_string(static_cast<long long>(v)));
            } else {
                std::ostringstream os;
                os.precision(17);
                os << v;
                out.push_back(os.str());
            }
        }
        break;
    case Kind::Text:
        out = texts;
        break;
    case Kind::Categorical:
        for (const std::int64_t c : codes) {
            out.push_back(c < 0 ? std::string() : categories[static_cast<std::size_t>(c)]);
        }
        break;
    }
    return out;
}

std::string hdf5Version()
{
    unsigned maj = 0;
    unsigned min = 0;
    unsigned rel = 0;
    H5get_libversion(&maj, &min, &rel);
    return ::wfm::detail::concat(maj, ".", min, ".", rel);
}

AnnData readAnnData(const std::string& path, const AnnDataReadOptions& o)
{
    std::lock_guard<std::mutex> lock(hdf5Mutex());
    QuietErrors quiet;
    Reader r;
    r.file = path;
    if (!std::filesystem::exists(path)) {
        throw DatasetError(path + ": no such file");
    }
    if (H5Fis_hdf5(path.c_str()) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        throw DatasetError(path + ": not an HDF5 file (.h5ad)");
    }
    r.fid = Id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!r.fid.valid()) {
        throw DatasetError(path + ": cannot open HDF5 file" + hdf5Message());
    }
    AnnData ad;
    ad.path = path;
    if (r.hasAttr("/", "encoding-type")) {
        ad.layout = "anndata 0.8+";
    } else if (r.exists("/obs") && r.objectType("/obs") == H5I_GROUP) {
        ad.layout = "anndata 0.7";
    } else {
        ad.layout = "legacy";
    }
    if (!r.exists("/obs")) {
        r.fail("/obs", "missing (no cell annotations)");
    }
    readDataframe(r, "/obs", ad.obsNames, &ad.obs, &ad.obsColumnOrder);
    std::int64_t nObs = -1;
    if (!ad.obsNames.empty()) {
        nObs = static_cast<std::int64_t>(ad.obsNames.size());
    }
    for (const std::string& name : ad.obsColumnOrder) {
        const auto len = static_cast<std::int64_t>(ad.obs[name].size());
        if (nObs < 0) {
            nObs = len;
        } else if (len != nObs) {
            r.fail("/obs/" + name, ::wfm::detail::concat("has ", len, " rows but obs has ", nObs, " cells"));
        }
    }
    std::int64_t nVars = -1;
    if (r.exists("/var")) {
        readDataframe(r, "/var", ad.varNames, nullptr, nullptr);
        if (!ad.varNames.empty()) {
            nVars = static_cast<std::int64_t>(ad.varNames.size());
        }
    }
    if (o.readX) {
        ad.X = readX(r, nObs, nVars);
    } else if (nObs < 0 && r.exists("/X")) {
        // The number of cells from X's shape without reading it.
        if (r.objectType("/X") == H5I_DATASET) {
            Id d = r.openDataset("/X");
            nObs = static_cast<std::int64_t>(r.shape(d.get(), "/X").at(0));
        } else if (r.hasAttr("/X", "shape")) {
            nObs = r.attrInts("/X", "shape").at(0);
        }
    }
    if (nObs < 0) {
        r.fail("/obs", "cannot tell the number of cells (no index, columns or X)");
    }
    ad.nObs = nObs;
    ad.nVars = std::max<std::int64_t>(nVars, 0);
    if (r.exists("/obsm")) {
        if (r.objectType("/obsm") == H5I_GROUP) {
            for (const std::string& key : r.children("/obsm")) {
                const bool wanted = o.allObsm || std::find(o.obsm.begin(), o.obsm.end(), key) != o.obsm.end();
                const std::string p = "/obsm/" + key;
                if (!wanted || r.objectType(p) != H5I_DATASET) {
                    continue; // dataframes / sparse arrays in obsm are not representations
                }
                ad.obsm[key] = readObsmArray(r, p, nObs);
            }
        } else {
            readObsmCompound(r, nObs, o, ad.obsm);
        }
    }
    if (!o.allObsm) {
        for (const std::string& key : o.obsm) {
            if (ad.obsm.count(key) == 0) {
                r.fail("/obsm/" + key, "missing");
            }
        }
    }
    return ad;
}

data::CellTable annDataCells(const AnnData& ad, const std::string& spatialKey,
    const std::string& labelColumn, const std::string& sectionColumn)
{
    auto column = [&](const std::string& key, const std::string& name) -> const AnnDataColumn& {
        const auto it = ad.obs.find(name);
        if (it == ad.obs.end()) {
            std::string names;
            for (const std::string& n : ad.obsColumnOrder) {
                names += (names.empty() ? "" : ", ") + n;
            }
            throw ConfigError(ad.path + ": " + key + "=" + name + ": no such obs column (columns: " + names + ")");
        }
        return it->second;
    };
    // Ids of a column: categorical codes keep the category order; other values are sorted.
    auto ids = [&](const AnnDataColumn& c, std::vector<std::string>& names) {
        if (c.kind == AnnDataColumn::Kind::Categorical) {
            names = c.categories;
            return torch::tensor(c.codes, torch::kLong);
        }
        const std::vector<std::string> texts = c.asText();
        std::set<std::string> distinct(texts.begin(), texts.end());
        distinct.erase(std::string());
        names.assign(distinct.begin(), distinct.end());
        std::vector<std::int64_t> v(texts.size());
        for (std::size_t i = 0; i < texts.size(); ++i) {
            v[i] = texts[i].empty() ? -1 : std::lower_bound(names.begin(), names.end(), texts[i]) - names.begin();
        }
        return torch::tensor(v, torch::kLong);
    };
    data::CellTable cells;
    const auto sp = ad.obsm.find(spatialKey);
    if (sp == ad.obsm.end()) {
        std::string names;
        for (const auto& [n, t] : ad.obsm) {
            names += (names.empty() ? "" : ", ") + n;
        }
        throw ConfigError(ad.path + ": spatial=" + spatialKey + ": no such obsm array (obsm: " + names + ")");
    }
    if (sp->second.size(1) < 2 || sp->second.size(1) > 3) {
        throw DatasetError(::wfm::detail::concat(ad.path, ": /obsm/", spatialKey, ": spatial coordinates must have 2 or 3 columns, got ",
            sp->second.size(1)));
    }
    cells.positions = sp->second;
    cells.cellTypes = ids(column("label", labelColumn), cells.typeNames);
    if (!sectionColumn.empty()) {
        cells.sections = ids(column("section", sectionColumn), cells.sectionNames);
        if ((cells.sections < 0).any().item<bool>()) {
            throw DatasetError(ad.path + ": /obs/" + sectionColumn + ": cells without a section");
        }
    }
    cells.expression = ad.X;
    cells.geneNames = ad.varNames;
    cells.representations = ad.obsm;
    cells.name = std::filesystem::path(ad.path).stem().string();
    return cells;
}

data::PointCloudDataset loadAnnDataNiches(const std::string& path, const std::map<std::string, std::string>& options)
{
    data::checkNicheKeys(options, { "spatial", "label", "section" }, "h5ad");
    const data::NicheOptions no = data::parseNicheOptions(options, "h5ad:" + path);
    auto opt = [&](const char* key, const char* def) {
        const auto it = options.find(key);
        return it == options.end() ? std::string(def) : it->second;
    };
    const std::string spatial = opt("spatial", "spatial");
    AnnDataReadOptions ro;
    ro.readX = no.rep == "pca" || no.rep == "raw" || no.rep == "X";
    ro.allObsm = false;
    ro.obsm = { spatial };
    if (!ro.readX && no.rep != spatial) {
        ro.obsm.push_back(no.rep);
    }
    const AnnData ad = readAnnData(path, ro);
    const data::CellTable cells = annDataCells(ad, spatial, opt("label", "cell_type"), opt("section", ""));
    data::NicheSet set = data::buildNiches(cells, no, path);
    set.data.name = cells.name;
    return set.data;
}

namespace detail {

void registerAnnDataReaders()
{
    data::registerDataScheme(
        "h5ad",
        [](const data::DataSpec& spec) { return loadAnnDataNiches(spec.path, spec.options); },
        "h5ad:PATH[?spatial=spatial&label=cell_type&section=&k=16&rep=pca|raw|OBSM&pcs=16&"
        "centers=&include_center=0&max_centers=0&seed=0] cellular niches of an AnnData file");
}

std::string annDataReaderDescription() { return "h5ad (HDF5 " + hdf5Version() + ")"; }

} // namespace detail
} // namespace wfm::io
