#pragma once

#include <QImage>
#include <QSize>
#include <QString>

#include <optional>

namespace wfm {

/// Writes `image` as PNG to `path` atomically (QSaveFile: a temporary file renamed over `path`
/// on success, so readers never see a partial file). Returns an empty string on success, else a
/// one-line error naming the path.
QString savePngAtomically(const QImage& image, const QString& path);

/// Parses "WIDTHxHEIGHT" (e.g. "1600x1200"; both in [1, 16384]); nullopt when malformed.
std::optional<QSize> parseImageSize(const QString& text);

} // namespace wfm
