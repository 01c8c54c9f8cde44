#pragma once

#include "wfm/Snapshot.h"

#include <QListView>
#include <QSize>

#include <memory>

namespace wfm {

/// A grid of thumbnails, one per distribution of a CloudSnapshot (point clouds drawn as dots,
/// coloured by label) or a GaussianSnapshot (filled 2-sigma ellipses of the first two
/// coordinates). Thumbnails are drawn offscreen into QImages with QPainter only when an item
/// first becomes visible, then cached, so hundreds of samples scroll fluidly: the view never
/// renders what it does not show. 3-D data is drawn in a fixed oblique projection.
///
/// Only the GUI thread may use this class.
class GalleryView : public QListView
{
    Q_OBJECT
public:
    explicit GalleryView(QWidget* parent = nullptr);
    ~GalleryView() override;

    /// Shows one thumbnail per cloud of `snapshot` (replacing what was shown).
    void setClouds(const CloudSnapshot& snapshot);
    /// Shows one thumbnail per Gaussian of `snapshot`.
    void setGaussians(const GaussianSnapshot& snapshot);
    void clear();

    /// Number of thumbnails (distributions) in the gallery.
    int count() const;
    /// Number of thumbnails drawn so far (for tests: lazy drawing keeps it near what was seen).
    int renderedCount() const;

    /// Thumbnail size in logical pixels (default 96x96); clears the cache.
    void setThumbnailSize(QSize size);
    QSize thumbnailSize() const;

Q_SIGNALS:
    /// Thumbnail `index` was activated (double-click or Enter).
    void sampleActivated(int index);

private:
    class Model;
    Model* m_model = nullptr;
};

} // namespace wfm
