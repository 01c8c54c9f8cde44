#pragma once

#include <string>

/// Hooks of the reader modules. Each module lives in io/src/<library>/ and is compiled only when
/// its library is found (io/CMakeLists.txt defines WFM_IO_HAVE_<LIBRARY>); Readers.cpp calls the
/// hooks of the modules this build has.
namespace wfm::io::detail {

#if WFM_IO_HAVE_ASSIMP
void registerMeshReaders();       ///< mesh: scheme (assimp)
std::string meshReaderDescription();
#endif
#if WFM_IO_HAVE_PNG
void registerImageReaders();      ///< png folders (libpng)
std::string imageReaderDescription();
#endif
#if WFM_IO_HAVE_FREETYPE
void registerFontReaders();       ///< builtin:letters (FreeType)
std::string fontReaderDescription();
#endif
#if WFM_IO_HAVE_HDF5
void registerAnnDataReaders();    ///< h5ad: scheme (HDF5)
std::string annDataReaderDescription();
#endif

} // namespace wfm::io::detail
