#include "VideoExport.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QStandardPaths>

#include <algorithm>
#include <cstdio>

namespace wfm {

VideoWriter::~VideoWriter()
{
    if (m_open) {
        cancel();
    }
}

VideoWriter::Format VideoWriter::formatForPath(const QString& path)
{
    return QFileInfo(path).suffix().compare(QLatin1String("gif"), Qt::CaseInsensitive) == 0 ? Format::Gif
                                                                                             : Format::Mp4;
}

bool VideoWriter::available()
{
    return !QStandardPaths::findExecutable(QStringLiteral("ffmpeg")).isEmpty();
}

bool VideoWriter::open(const QString& path, QSize size, int fps)
{
    m_error.clear();
    m_frames = 0;
    const QString ffmpeg = QStandardPaths::findExecutable(QStringLiteral("ffmpeg"));
    if (ffmpeg.isEmpty()) {
        m_error = QStringLiteral("the ffmpeg program was not found (install Debian's ffmpeg package)");
        return false;
    }
    m_size = QSize(std::max(2, size.width() & ~1), std::max(2, size.height() & ~1));
    m_path = QFileInfo(path).absoluteFilePath();
    const Format format = formatForPath(path);
    const QFileInfo info(m_path);
    m_tempPath = info.absoluteDir().filePath(
        QStringLiteral(".%1.%2.part").arg(info.completeBaseName()).arg(QCoreApplication::applicationPid()));
    QStringList args { QStringLiteral("-hide_banner"), QStringLiteral("-loglevel"), QStringLiteral("error"),
        QStringLiteral("-y"), QStringLiteral("-f"), QStringLiteral("rawvideo"), QStringLiteral("-pix_fmt"),
        QStringLiteral("rgb24"), QStringLiteral("-s"),
        QStringLiteral("%1x%2").arg(m_size.width()).arg(m_size.height()), QStringLiteral("-r"),
        QString::number(std::max(1, fps)), QStringLiteral("-i"), QStringLiteral("-") };
    if (format == Format::Gif) {
        args << QStringLiteral("-vf")
             << QStringLiteral("split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer")
             << QStringLiteral("-loop") << QStringLiteral("0") << QStringLiteral("-f") << QStringLiteral("gif");
    } else {
        args << QStringLiteral("-c:v") << QStringLiteral("libx264") << QStringLiteral("-pix_fmt")
             << QStringLiteral("yuv420p") << QStringLiteral("-preset") << QStringLiteral("veryfast")
             << QStringLiteral("-crf") << QStringLiteral("20") << QStringLiteral("-movflags")
             << QStringLiteral("+faststart") << QStringLiteral("-f") << QStringLiteral("mp4");
    }
    args << m_tempPath;
    m_process.setProgram(ffmpeg);
    m_process.setArguments(args);
    m_process.setProcessChannelMode(QProcess::SeparateChannels);
    m_process.start();
    if (!m_process.waitForStarted(10'000)) {
        m_error = QStringLiteral("could not start ffmpeg: %1").arg(m_process.errorString());
        return false;
    }
    m_open = true;
    return true;
}

bool VideoWriter::writeFrame(const QImage& frame)
{
    if (!m_open) {
        m_error = QStringLiteral("the video is not open");
        return false;
    }
    QImage rgb = (frame.size() == m_size ? frame : frame.scaled(m_size, Qt::IgnoreAspectRatio, Qt::SmoothTransformation))
                     .convertToFormat(QImage::Format_RGB888);
    for (int y = 0; y < rgb.height(); ++y) {
        const char* line = reinterpret_cast<const char*>(rgb.constScanLine(y));
        const qint64 bytes = static_cast<qint64>(rgb.width()) * 3;
        if (m_process.write(line, bytes) != bytes) {
            m_error = QStringLiteral("ffmpeg stopped accepting frames: %1").arg(QString::fromLocal8Bit(m_process.readAllStandardError()));
            return false;
        }
    }
    // Keep the pipe's buffer bounded.
    while (m_process.bytesToWrite() > 0) {
        if (!m_process.waitForBytesWritten(30'000)) {
            m_error = QStringLiteral("ffmpeg stopped accepting frames: %1").arg(QString::fromLocal8Bit(m_process.readAllStandardError()));
            return false;
        }
    }
    ++m_frames;
    return true;
}

bool VideoWriter::finish()
{
    if (!m_open) {
        return false;
    }
    m_open = false;
    m_process.closeWriteChannel();
    if (!m_process.waitForFinished(120'000) || m_process.exitStatus() != QProcess::NormalExit
        || m_process.exitCode() != 0) {
        m_error = QStringLiteral("ffmpeg failed: %1").arg(QString::fromLocal8Bit(m_process.readAllStandardError()).trimmed());
        m_process.kill();
        m_process.waitForFinished();
        QFile::remove(m_tempPath);
        return false;
    }
    // rename(2) replaces the target atomically.
    if (std::rename(QFile::encodeName(m_tempPath).constData(), QFile::encodeName(m_path).constData()) != 0) {
        m_error = QStringLiteral("%1: could not move the video into place").arg(m_path);
        QFile::remove(m_tempPath);
        return false;
    }
    return true;
}

void VideoWriter::cancel()
{
    m_open = false;
    m_process.kill();
    m_process.waitForFinished();
    QFile::remove(m_tempPath);
}

} // namespace wfm
