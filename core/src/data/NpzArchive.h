#pragma once

// Internal: reading members of .npz archives (libzip) and the label-name encodings the
// dataset readers share (DataSpec.cpp, GaussianDataset.cpp).

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace wfm::data::npz {

/// Whether `s` ends with the lower-case ASCII `suffix`, ignoring the case of `s`.
bool endsWithNoCase(const std::string& s, std::string_view suffix);

/// The file name of `path` without folder and extension.
std::string stemOf(const std::string& path);

/// Raw bytes of the members "NAME.npy" of an .npz archive whose NAME is in `wanted`, by NAME.
/// Other members are not read, so an unsupported dtype there cannot fail the load. Throws
/// DatasetError naming the file (and member) when the archive or a member cannot be read, or
/// when the build has no libzip.
std::map<std::string, std::string> readNpzMembers(const std::string& path, const std::set<std::string>& wanted);

/// Whether `path` is a readable .npz archive with a member NAME.npy (false when it cannot be
/// opened or the build has no libzip).
bool npzHasMember(const std::string& path, const std::string& name);

/// Label names from .npy bytes: a 1-D numpy unicode array ('<Un' / '>Un') or a uint8 array of
/// '\n'-separated UTF-8 names. Throws DatasetError naming `what`.
std::vector<std::string> parseLabelNames(const std::string& bytes, const std::string& what);

} // namespace wfm::data::npz
