#include "wfm/widgets/GalleryView.h"

#include "wfm/widgets/ColourMaps.h"

#include <QAbstractListModel>
#include <QImage>
#include <QPainter>
#include <QPainterPath>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

namespace wfm {

namespace {

/// Screen position (x, y) of a data point: 2-D as is, 3-D in a fixed oblique view.
inline QPointF project(const float* p, int dim)
{
    if (dim <= 1) {
        return { p[0], 0.0 };
    }
    if (dim == 2) {
        return { p[0], p[1] };
    }
    // Rotate 35 degrees about y, then 25 about x, and drop z.
    constexpr double ca = 0.8191520443, sa = 0.5735764364, cb = 0.9063077870, sb = 0.4226182617;
    const double x = ca * p[0] + sa * p[2];
    const double z = -sa * p[0] + ca * p[2];
    const double y = cb * p[1] - sb * z;
    return { x, y };
}

} // namespace

class GalleryView::Model : public QAbstractListModel
{
public:
    explicit Model(QObject* parent)
        : QAbstractListModel(parent)
    {
    }

    void setClouds(const CloudSnapshot& s)
    {
        beginResetModel();
        m_clouds = s;
        m_gaussians = {};
        m_isGaussian = false;
        m_cache.assign(static_cast<size_t>(s.count), QImage());
        m_rendered = 0;
        endResetModel();
    }
    void setGaussians(const GaussianSnapshot& s)
    {
        beginResetModel();
        m_gaussians = s;
        m_clouds = {};
        m_isGaussian = true;
        m_cache.assign(static_cast<size_t>(s.count), QImage());
        m_rendered = 0;
        endResetModel();
    }
    void setThumbnailSize(QSize size, double dpr)
    {
        beginResetModel();
        m_size = size;
        m_dpr = dpr;
        std::fill(m_cache.begin(), m_cache.end(), QImage());
        m_rendered = 0;
        endResetModel();
    }
    QSize thumbnailSize() const { return m_size; }
    int renderedCount() const { return m_rendered; }

    int rowCount(const QModelIndex& parent = {}) const override
    {
        return parent.isValid() ? 0 : static_cast<int>(m_cache.size());
    }

    QVariant data(const QModelIndex& index, int role) const override
    {
        const int k = index.row();
        if (!index.isValid() || k < 0 || k >= rowCount()) {
            return {};
        }
        if (role == Qt::DecorationRole) {
            QImage& image = m_cache[static_cast<size_t>(k)];
            if (image.isNull()) {
                image = m_isGaussian ? drawGaussian(k) : drawCloud(k);
                ++m_rendered;
            }
            return image;
        }
        if (role == Qt::DisplayRole) {
            const auto& labels = m_isGaussian ? m_gaussians.labels : m_clouds.labels;
            const auto& names = m_isGaussian ? m_gaussians.labelNames : m_clouds.labelNames;
            if (!labels.empty()) {
                const std::int64_t l = labels[static_cast<size_t>(k)];
                if (l >= 0 && l < static_cast<std::int64_t>(names.size())) {
                    return QStringLiteral("%1 %2").arg(k).arg(QString::fromStdString(names[static_cast<size_t>(l)]));
                }
            }
            return QString::number(k);
        }
        if (role == Qt::ToolTipRole) {
            return m_isGaussian ? QStringLiteral("Gaussian %1").arg(k)
                                : QStringLiteral("Cloud %1: %2 points").arg(k).arg(m_clouds.liveCount(k));
        }
        return {};
    }

private:
    QImage blank() const
    {
        QImage image((m_size * m_dpr), QImage::Format_ARGB32_Premultiplied);
        image.setDevicePixelRatio(m_dpr);
        image.fill(Qt::transparent);
        return image;
    }

    QColor colourOf(const std::vector<std::int64_t>& labels, int k) const
    {
        return colours::categorical(labels.empty() ? 0 : labels[static_cast<size_t>(k)]);
    }

    /// Maps a bounding box of data coordinates onto the thumbnail, keeping the aspect ratio.
    static QTransform fit(const QRectF& box, QSize size)
    {
        const double margin = 6.0;
        const double w = std::max(box.width(), 1e-9), h = std::max(box.height(), 1e-9);
        const double scale = std::min((size.width() - 2 * margin) / w, (size.height() - 2 * margin) / h);
        QTransform t;
        t.translate(size.width() / 2.0, size.height() / 2.0);
        t.scale(scale, -scale); // data y goes up
        t.translate(-box.center().x(), -box.center().y());
        return t;
    }

    QImage drawCloud(int k) const
    {
        QImage image = blank();
        const CloudSnapshot& s = m_clouds;
        std::vector<QPointF> pts;
        pts.reserve(static_cast<size_t>(s.maxPoints));
        const float* base = s.cloud(k);
        for (int i = 0; i < s.maxPoints; ++i) {
            if (s.weights[static_cast<size_t>(k) * s.maxPoints + i] > 0.0f) {
                pts.push_back(project(base + static_cast<size_t>(i) * s.dim, s.dim));
            }
        }
        if (pts.empty()) {
            return image;
        }
        double x0 = std::numeric_limits<double>::max(), y0 = x0, x1 = -x0, y1 = -x0;
        for (const QPointF& p : pts) {
            x0 = std::min(x0, p.x());
            x1 = std::max(x1, p.x());
            y0 = std::min(y0, p.y());
            y1 = std::max(y1, p.y());
        }
        const QTransform t = fit(QRectF(QPointF(x0, y0), QPointF(x1, y1)), m_size);
        QPainter painter(&image);
        painter.setRenderHint(QPainter::Antialiasing);
        const QColor colour = colourOf(s.labels, k);
        painter.setPen(Qt::NoPen);
        painter.setBrush(colour);
        // Smaller dots for denser clouds.
        const double r = std::clamp(12.0 / std::sqrt(static_cast<double>(pts.size())), 0.7, 2.5);
        for (const QPointF& p : pts) {
            painter.drawEllipse(t.map(p), r, r);
        }
        return image;
    }

    QImage drawGaussian(int k) const
    {
        QImage image = blank();
        const GaussianSnapshot& s = m_gaussians;
        const int d = s.dim;
        const float* m = s.means.data() + static_cast<size_t>(k) * d;
        const float* S = s.covariances.data() + static_cast<size_t>(k) * d * d;
        const double mx = m[0], my = d > 1 ? m[1] : 0.0;
        const double a = S[0], b = d > 1 ? S[1] : 0.0, c = d > 1 ? S[d + 1] : 0.0;
        // Eigen-decomposition of the leading 2x2 block: axes of the 2-sigma ellipse.
        const double tr = a + c, det = a * c - b * b;
        const double disc = std::sqrt(std::max(0.0, tr * tr / 4 - det));
        const double l1 = std::max(0.0, tr / 2 + disc), l2 = std::max(0.0, tr / 2 - disc);
        const double angle = std::atan2(l1 - a, b == 0.0 ? 1e-30 : b);
        const double r1 = 2.0 * std::sqrt(l1), r2 = 2.0 * std::sqrt(l2);
        const double extent = std::max({ r1, r2, 1e-6 });
        const QTransform t = fit(QRectF(mx - extent, my - extent, 2 * extent, 2 * extent), m_size);
        QPainter painter(&image);
        painter.setRenderHint(QPainter::Antialiasing);
        QColor colour = colourOf(s.labels, k);
        QPainterPath path;
        path.addEllipse(QPointF(0, 0), r1, std::max(r2, extent * 0.02));
        QTransform local;
        local.translate(mx, my);
        local.rotateRadians(b == 0.0 && a >= c ? 0.0 : angle);
        const QPainterPath shape = (local * t).map(path);
        QColor fill = colour;
        fill.setAlphaF(0.35);
        painter.setBrush(fill);
        painter.setPen(QPen(colour, 1.5));
        painter.drawPath(shape);
        painter.setBrush(colour);
        painter.setPen(Qt::NoPen);
        painter.drawEllipse(t.map(QPointF(mx, my)), 2.0, 2.0);
        return image;
    }

    CloudSnapshot m_clouds;
    GaussianSnapshot m_gaussians;
    bool m_isGaussian = false;
    QSize m_size { 96, 96 };
    double m_dpr = 1.0;
    mutable std::vector<QImage> m_cache;
    mutable int m_rendered = 0;
};

GalleryView::GalleryView(QWidget* parent)
    : QListView(parent)
    , m_model(new Model(this))
{
    setModel(m_model);
    setViewMode(QListView::IconMode);
    setResizeMode(QListView::Adjust);
    setMovement(QListView::Static);
    setUniformItemSizes(true);
    // Uniform sizes make a single layout pass cheap even for thousands of items.
    setLayoutMode(QListView::SinglePass);
    setSelectionMode(QAbstractItemView::SingleSelection);
    setVerticalScrollMode(QAbstractItemView::ScrollPerPixel);
    setWordWrap(false);
    setThumbnailSize(QSize(96, 96));
    connect(this, &QListView::activated, this, [this](const QModelIndex& index) { Q_EMIT sampleActivated(index.row()); });
}

GalleryView::~GalleryView() = default;

void GalleryView::setClouds(const CloudSnapshot& snapshot)
{
    m_model->setClouds(snapshot);
}

void GalleryView::setGaussians(const GaussianSnapshot& snapshot)
{
    m_model->setGaussians(snapshot);
}

void GalleryView::clear()
{
    m_model->setClouds({});
}

int GalleryView::count() const
{
    return m_model->rowCount();
}

int GalleryView::renderedCount() const
{
    return m_model->renderedCount();
}

void GalleryView::setThumbnailSize(QSize size)
{
    m_model->setThumbnailSize(size, devicePixelRatioF());
    setIconSize(size);
    setGridSize(QSize(size.width() + 16, size.height() + fontMetrics().height() + 12));
}

QSize GalleryView::thumbnailSize() const
{
    return m_model->thumbnailSize();
}

} // namespace wfm
