#pragma once

#include <QImage>
#include <QProcess>
#include <QSize>
#include <QString>

namespace wfm {

/// Writes a video through Debian's `ffmpeg` program: raw RGB24 frames are piped into its
/// standard input; MP4 is H.264 (libx264, yuv420p, even sizes), GIF uses a generated palette.
/// The file is written under a temporary name in the target folder and renamed over `path` by
/// finish() (atomic: readers never see a partial video).
class VideoWriter
{
public:
    enum class Format
    {
        Mp4,
        Gif
    };

    VideoWriter() = default;
    ~VideoWriter();

    /// Format from the path's suffix (.gif = GIF, everything else MP4).
    static Format formatForPath(const QString& path);
    /// Whether the ffmpeg program is found on PATH.
    static bool available();

    /// Starts ffmpeg. `size` is rounded down to even numbers. Returns false and sets error().
    bool open(const QString& path, QSize size, int fps);
    /// Sends one frame (scaled to the video size when it differs). False on failure.
    bool writeFrame(const QImage& frame);
    /// Closes the input, waits for ffmpeg and renames the file into place. False on failure.
    bool finish();
    /// Stops ffmpeg and removes the temporary file.
    void cancel();

    QSize size() const { return m_size; }
    int framesWritten() const { return m_frames; }
    QString error() const { return m_error; }

private:
    QProcess m_process;
    QString m_path;
    QString m_tempPath;
    QSize m_size;
    int m_frames = 0;
    QString m_error;
    bool m_open = false;
};

} // namespace wfm
