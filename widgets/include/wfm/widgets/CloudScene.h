#pragma once

#include "wfm/widgets/Scene.h"

#include <QColor>
#include <QString>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

namespace wfm {

struct CloudSnapshot;

/// Point clouds from a CloudSnapshot drawn as round, shaded point sprites of a fixed pixel
/// size. Only live points (weight > 0) are drawn. Coordinates: 1-D data is drawn on the x axis,
/// 2-D data in the z = 0 plane, data with more than 3 dimensions by its first three coordinates.
///
/// Colouring (one mode at a time; a new setCloud/setClouds keeps the mode and re-applies it
/// when its data still fits, otherwise it falls back to label colours):
/// - Label: each cloud by its label (categorical palette; the cloud's position in the shown
///   list when the snapshot has no labels), with a legend of the labels shown.
/// - Scalar: by one value per point through a sequential colour map, with a scalar bar.
/// - Correspondence: by a smooth colour map of the position of each point's source point, so
///   that a cloud and its image under a transport map show the same colour for matched points.
///
/// Errors: setters throw wfm::ConfigError (wfm/Error.h) for indices or sizes that do not fit
/// the snapshot; the scene is unchanged in that case.
class CloudScene : public Scene
{
public:
    enum class ColourMode
    {
        Label,
        Scalar,
        Correspondence
    };

    CloudScene();
    ~CloudScene() override;

    /// Shows cloud `index` of `snapshot`. Throws ConfigError unless 0 <= index < count and
    /// the snapshot's arrays match its shape.
    void setCloud(const CloudSnapshot& snapshot, int index);
    /// Shows several clouds of `snapshot` overlaid, in the order given (duplicates allowed).
    /// Throws ConfigError for an index out of range or inconsistent arrays.
    void setClouds(const CloudSnapshot& snapshot, const std::vector<int>& indices);
    /// Removes every point.
    void clear();

    /// Number of points drawn (live points of every shown cloud).
    int pointCount() const;
    /// Indices of the clouds shown, as given to setCloud/setClouds.
    const std::vector<int>& shownClouds() const;
    /// Point-space dimension of the shown snapshot (0 when empty).
    int dimension() const;

    /// Diameter of each point in device-independent pixels (default 7).
    void setPointSize(double pixels);
    double pointSize() const;

    /// Colours each shown cloud by its label (or position in the shown list without labels).
    void colourByLabel();
    /// Colours points by `values`, laid out like CloudSnapshot::weights of the shown snapshot
    /// ([count * maxPoints]; entries of padding points are ignored), through a sequential
    /// colour map over [min, max] of the shown points (or `range` when lo < hi). A scalar bar
    /// titled `title` is shown. Throws ConfigError if the size does not match.
    void colourByScalar(const std::vector<float>& values, const QString& title,
        std::pair<double, double> range = { 0.0, 0.0 });
    /// Correspondence colouring. Point i of each shown cloud gets the colour of the position of
    /// point sourcePointOf[i] (i itself when `sourcePointOf` is empty) of cloud `sourceIndex`
    /// in `source`, through a smooth map of the position normalised to the source cloud's
    /// bounding box (ColourMaps position2D for 2-D data, position3D otherwise). Points without a
    /// live source point are grey. Throws ConfigError if `sourceIndex` is out of range or an
    /// entry of `sourcePointOf` is outside [0, source.maxPoints).
    void setCorrespondenceColours(const CloudSnapshot& source, int sourceIndex,
        const std::vector<int>& sourcePointOf = {});
    ColourMode colourMode() const;
    /// Title of the scalar bar in Scalar mode (as given to colourByScalar); empty otherwise.
    QString scalarTitle() const;
    /// Whether the scalar bar is drawn: Scalar mode with points shown, the legend on and the
    /// scene visible.
    bool isScalarBarShown() const;

    /// Shows the label legend (Label mode) or the scalar bar (Scalar mode); default on.
    void setLegendVisible(bool visible);
    bool isLegendVisible() const;

    /// Colour point `i` of the drawn points currently has (RGBA, i in [0, pointCount())).
    QColor pointColour(int i) const;
    /// Position of drawn point `i` in the view's world coordinates (zeros outside the range).
    std::array<double, 3> pointPosition(int i) const;
    /// Colour the categorical palette gives `label` (same as colours::categorical).
    static QColor labelColour(std::int64_t label);

protected:
    void applyTheme(const QColor& foreground, const QColor& background) override;
    void applyPixelScale(double scale) override;
    double rightOverlayFraction() const override;

private:
    void rebuildGeometry();
    void applyColours();

    struct Private;
    std::unique_ptr<Private> d;
};

} // namespace wfm
