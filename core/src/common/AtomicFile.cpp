#include "wfm/AtomicFile.h"

#include "wfm/Error.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <random>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

// POSIX only: the engine targets Linux workstations and GPU servers.

namespace wfm {
namespace {

std::string osError(int err)
{
    return std::generic_category().message(err);
}

[[noreturn]] void fail(const std::string& what, const std::string& path, int err)
{
    throw Error(detail::concat("cannot ", what, " '", path, "': ", osError(err)));
}

std::string folderOf(const std::string& path)
{
    const auto slash = path.find_last_of('/');
    if (slash == std::string::npos) {
        return ".";
    }
    if (slash == 0) {
        return "/";
    }
    return path.substr(0, slash);
}

std::string baseNameOf(const std::string& path)
{
    const auto slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Opens a fresh temporary file next to `path` with O_EXCL, so that two writers of the same
// target never share a temporary. Mode 0666 lets the umask decide the final permissions
// (mkstemp would force 0600 onto the renamed file).
int openTemporary(const std::string& path, std::string& tempPath)
{
    static std::atomic<unsigned> counter { 0 };
    thread_local std::mt19937_64 rng { std::random_device {}() };
    const std::string folder = folderOf(path);
    const std::string stem
        = (folder == "/" ? "/" : folder + "/") + "." + baseNameOf(path) + ".tmp-";
    int lastError = 0;
    for (int attempt = 0; attempt < 64; ++attempt) {
        tempPath = detail::concat(
            stem, ::getpid(), "-", counter.fetch_add(1), "-", std::hex, rng() & 0xffffffu);
        int fd = -1;
        do {
            fd = ::open(tempPath.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        } while (fd < 0 && errno == EINTR);
        if (fd >= 0) {
            return fd;
        }
        lastError = errno;
        if (lastError != EEXIST) {
            break;
        }
    }
    tempPath.clear();
    throw Error(detail::concat("cannot write '", path, "': cannot create a temporary file in '",
        folder, "': ", osError(lastError)));
}

void syncFolder(const std::string& path)
{
    // Makes the rename itself durable. Some file systems refuse fsync on a folder; the data
    // is already safe at this point, so failures are ignored.
    const int fd = ::open(folderOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

} // namespace

AtomicFileWriter::AtomicFileWriter(std::string path)
    : m_path(std::move(path))
{
    if (m_path.empty()) {
        throw Error("cannot write a file with an empty path");
    }
    m_fd = openTemporary(m_path, m_tempPath);
}

AtomicFileWriter::~AtomicFileWriter()
{
    discard();
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : m_path(std::move(other.m_path))
    , m_tempPath(std::exchange(other.m_tempPath, {}))
    , m_fd(std::exchange(other.m_fd, -1))
{
}

AtomicFileWriter& AtomicFileWriter::operator=(AtomicFileWriter&& other) noexcept
{
    if (this != &other) {
        discard();
        m_path = std::move(other.m_path);
        m_tempPath = std::exchange(other.m_tempPath, {});
        m_fd = std::exchange(other.m_fd, -1);
    }
    return *this;
}

void AtomicFileWriter::discard() noexcept
{
    if (m_fd >= 0) {
        ::close(m_fd);
        m_fd = -1;
    }
    if (!m_tempPath.empty()) {
        ::unlink(m_tempPath.c_str());
        m_tempPath.clear();
    }
}

void AtomicFileWriter::write(const void* data, std::size_t size)
{
    if (m_fd < 0) {
        throw Error(detail::concat("cannot write '", m_path, "': the file was already committed"));
    }
    const auto* bytes = static_cast<const char*>(data);
    while (size > 0) {
        // Linux transfers at most ~2 GiB per call; larger writes come back partial.
        const ssize_t n = ::write(m_fd, bytes, size);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            const int err = errno;
            discard();
            fail("write", m_path, err);
        }
        bytes += n;
        size -= static_cast<std::size_t>(n);
    }
}

void AtomicFileWriter::commit()
{
    if (m_fd < 0) {
        throw Error(detail::concat("cannot write '", m_path, "': the file was already committed"));
    }
    if (::fsync(m_fd) != 0) {
        const int err = errno;
        discard();
        fail("write", m_path, err);
    }
    const int fd = std::exchange(m_fd, -1);
    if (::close(fd) != 0) {
        const int err = errno;
        discard();
        fail("write", m_path, err);
    }
    if (::rename(m_tempPath.c_str(), m_path.c_str()) != 0) {
        const int err = errno;
        discard();
        fail("replace", m_path, err);
    }
    m_tempPath.clear();
    syncFolder(m_path);
}

void writeFileAtomically(const std::string& path, const std::string& bytes)
{
    AtomicFileWriter out(path);
    out.write(bytes);
    out.commit();
}

} // namespace wfm
