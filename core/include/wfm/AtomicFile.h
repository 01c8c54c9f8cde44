#pragma once

#include <cstddef>
#include <string>

namespace wfm {

/// Writes `bytes` to `path` so that readers see either the old file or the complete new one,
/// never a partial file: the data goes to a temporary file in the same folder, is flushed to
/// disk (fsync), and then renamed over `path`. The new file gets the usual permissions
/// (0666 minus the umask).
/// Throws wfm::Error naming the path and the operating-system error when any step fails; the
/// temporary file is removed in that case and `path` is left untouched.
void writeFileAtomically(const std::string& path, const std::string& bytes);

/// Streams data into a temporary file next to `path`; commit() flushes it to disk and renames
/// it over `path`. A writer destroyed without a successful commit() removes its temporary
/// file, so an exception between construction and commit() leaves `path` as it was.
///
///     AtomicFileWriter out(path);
///     out.write(header.data(), header.size());
///     out.write(tensor.data_ptr(), tensor.nbytes());
///     out.commit();
///
/// Not copyable; movable. Every member throws wfm::Error naming the path and the OS error.
class AtomicFileWriter
{
public:
    /// Creates the temporary file (in the folder of `path`).
    explicit AtomicFileWriter(std::string path);
    ~AtomicFileWriter();

    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
    AtomicFileWriter(AtomicFileWriter&& other) noexcept;
    AtomicFileWriter& operator=(AtomicFileWriter&& other) noexcept;

    /// Appends `size` bytes. Throws if the writer was already committed or the write fails.
    void write(const void* data, std::size_t size);
    void write(const std::string& bytes) { write(bytes.data(), bytes.size()); }

    /// fsync, close, rename over the target path, then fsync the folder (best effort).
    void commit();

    /// The final path and the temporary path (empty after commit() or a move).
    const std::string& path() const { return m_path; }
    const std::string& tempPath() const { return m_tempPath; }

private:
    void discard() noexcept;

    std::string m_path;
    std::string m_tempPath;
    int m_fd = -1;
};

} // namespace wfm
