#include "ImageExport.h"

#include <QRegularExpression>
#include <QSaveFile>

namespace wfm {

QString savePngAtomically(const QImage& image, const QString& path)
{
    if (image.isNull()) {
        return QStringLiteral("%1: nothing was rendered").arg(path);
    }
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly)) {
        return QStringLiteral("%1: %2").arg(path, file.errorString());
    }
    if (!image.save(&file, "PNG")) {
        file.cancelWriting();
        return QStringLiteral("%1: PNG encoding failed").arg(path);
    }
    if (!file.commit()) {
        return QStringLiteral("%1: %2").arg(path, file.errorString());
    }
    return {};
}

std::optional<QSize> parseImageSize(const QString& text)
{
    static const QRegularExpression pattern(QStringLiteral("^\\s*(\\d{1,5})\\s*[xX]\\s*(\\d{1,5})\\s*$"));
    const QRegularExpressionMatch match = pattern.match(text);
    if (!match.hasMatch()) {
        return std::nullopt;
    }
    const int w = match.captured(1).toInt();
    const int h = match.captured(2).toInt();
    if (w < 1 || h < 1 || w > 16384 || h > 16384) {
        return std::nullopt;
    }
    return QSize(w, h);
}

} // namespace wfm
