#pragma once

#include <torch/types.h>

#include <map>
#include <string>

namespace wfm::data {

/// Reads a NumPy .npy file (format versions 1.0, 2.0 and 3.0) into a CPU tensor of the same
/// shape. Supported dtypes: <f4 <f8 <i8 <i4 <i2 |i1 |u1 |b1 and the big-endian >f4 >f8 >i8 >i4
/// >i2 (byte-swapped on read). Fortran-order arrays are returned in C order with the same
/// shape and values. 0-d arrays give 0-d tensors; empty arrays give empty tensors.
/// Throws DatasetError ("PATH: problem") when the file is missing or unreadable, is not an NPY
/// file, has a malformed or truncated header, an unsupported dtype (named in the message), a
/// shape whose size overflows or exceeds the data in the file, or too little data.
torch::Tensor readNpy(const std::string& path);

/// As readNpy, for the bytes of an .npy file held in memory; `what` names the source in error
/// messages (a path, or "archive.npz:member.npy").
torch::Tensor parseNpy(const std::string& bytes, const std::string& what);

/// Writes `t` as an .npy file (format 1.0, or 2.0 for huge headers), C order, little-endian.
/// The tensor may live on any device (it is copied to the CPU) and be non-contiguous.
/// Supported dtypes: float32 float64 int64 int32 int16 int8 uint8 bool.
/// The file is replaced atomically (see writeFileAtomically).
/// Throws ConfigError for an unsupported dtype or undefined tensor, wfm::Error when writing fails.
void writeNpy(const std::string& path, const torch::Tensor& t);

/// The bytes writeNpy would write. Throws as writeNpy.
std::string serializeNpy(const torch::Tensor& t);

/// The arrays of an .npz archive, by name (member "name.npy" -> key "name").
using NpzArchive = std::map<std::string, torch::Tensor>;

/// Reads an .npz archive as written by np.savez (stored) or np.savez_compressed (deflated).
/// Members whose names do not end in ".npy" are ignored.
/// Throws DatasetError naming the file (and the member) for any problem, including a build
/// without libzip.
NpzArchive readNpz(const std::string& path);

/// Writes `arrays` as an .npz archive that np.load opens; members are deflated when `compress`
/// (np.savez_compressed) and stored otherwise (np.savez). The file is replaced atomically.
/// Throws ConfigError for an empty array name or an unsupported dtype, DatasetError for a build
/// without libzip, wfm::Error when writing fails.
void writeNpz(const std::string& path, const NpzArchive& arrays, bool compress = false);

/// Whether this build reads and writes .npz archives (it needs libzip).
bool npzSupported();

/// Returns arrays[name], or throws DatasetError
/// "FILE: array 'name' is missing (has: a, b, c)".
torch::Tensor requireArray(
    const NpzArchive& arrays, const std::string& name, const std::string& file);

} // namespace wfm::data
