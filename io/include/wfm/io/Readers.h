#pragma once

#include <string>
#include <vector>

/// The io library: data-spec schemes and built-in families that need a format library
/// (DESIGN.md, "Layers and folders"). Call registerReaders() once at start-up (the CLI and the
/// GUI do) to make them reachable through wfm::data::loadPointClouds().
namespace wfm::io {

/// Registers every scheme and built-in family this build supports. Idempotent and thread safe.
void registerReaders();

/// Which optional readers this build has, e.g. {"mesh (assimp 5.2)", "h5ad (HDF5 1.10)"}.
std::vector<std::string> availableReaders();

} // namespace wfm::io
