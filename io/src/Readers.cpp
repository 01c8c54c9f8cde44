#include "wfm/io/Readers.h"

#include "Registration.h"

#include <mutex>

namespace wfm::io {

void registerReaders()
{
    static std::once_flag once;
    std::call_once(once, [] {
#if WFM_IO_HAVE_ASSIMP
        detail::registerMeshReaders();
#endif
#if WFM_IO_HAVE_PNG
        detail::registerImageReaders();
#endif
#if WFM_IO_HAVE_FREETYPE
        detail::registerFontReaders();
#endif
#if WFM_IO_HAVE_HDF5
        detail::registerAnnDataReaders();
#endif
    });
}

std::vector<std::string> availableReaders()
{
    std::vector<std::string> out;
#if WFM_IO_HAVE_ASSIMP
    out.push_back(detail::meshReaderDescription());
#endif
#if WFM_IO_HAVE_PNG
    out.push_back(detail::imageReaderDescription());
#endif
#if WFM_IO_HAVE_FREETYPE
    out.push_back(detail::fontReaderDescription());
#endif
#if WFM_IO_HAVE_HDF5
    out.push_back(detail::annDataReaderDescription());
#endif
    return out;
}

} // namespace wfm::io
