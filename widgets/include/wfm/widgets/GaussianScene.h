#pragma once

#include "wfm/widgets/Scene.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace wfm {

struct GaussianSnapshot;

/// Gaussians from a GaussianSnapshot drawn as their k-sigma level sets
/// {x : (x - m)^T S^-1 (x - m) <= k^2}:
/// - 1-D and 2-D Gaussians: filled ellipses in the z = 0 plane (semi-transparent fill, opaque
///   outline, centre marker). A 1-D Gaussian is drawn as the segment m +- k sigma on the x axis.
/// - Gaussians of dimension 3 or more: translucent ellipsoids of the leading 3x3 block (the
///   marginal of the first three coordinates) with a centre marker.
/// Each Gaussian is coloured by its label (categorical palette; by its index without labels),
/// with a legend of label names when the snapshot names them.
///
/// setGaussians is meant to be called every frame of an animation: when the count and dimension
/// stay the same, only the arrays are refilled. Ellipsoids are drawn either by instanced
/// glyphs (a unit sphere scaled and rotated per instance, EllipsoidMethod::Glyph, the default)
/// or by one mesh rebuilt from transformed spheres (EllipsoidMethod::Mesh).
///
/// Errors: setGaussians throws wfm::ConfigError when the arrays do not match count and dim or
/// a covariance is not symmetric positive semi-definite (tolerance 1e-4 relative to its largest
/// entry, for float data); the scene is
/// unchanged in that case.
class GaussianScene : public Scene
{
public:
    enum class EllipsoidMethod
    {
        Glyph,
        Mesh
    };

    GaussianScene();
    ~GaussianScene() override;

    /// Shows every Gaussian of `snapshot`.
    void setGaussians(const GaussianSnapshot& snapshot);
    /// Removes everything.
    void clear();
    /// Number of Gaussians shown.
    int count() const;
    /// True when the shown Gaussians are drawn as 3-D ellipsoids (dimension >= 3).
    bool drawsEllipsoids() const;

    /// The level k of the drawn k-sigma sets (default 2). Throws ConfigError unless k > 0.
    void setSigmaLevel(double k);
    double sigmaLevel() const;

    /// Opacity of ellipse fills and ellipsoid surfaces in (0, 1] (default 0.3 and 0.45).
    void setFillOpacity(double opacity);
    double fillOpacity() const;

    /// How ellipsoids are drawn (default Glyph).
    void setEllipsoidMethod(EllipsoidMethod method);
    EllipsoidMethod ellipsoidMethod() const;

    /// Shows the label legend (only drawn when the snapshot names its labels); default on.
    void setLegendVisible(bool visible);
    bool isLegendVisible() const;

protected:
    void applyTheme(const QColor& foreground, const QColor& background) override;
    void applyPixelScale(double scale) override;

private:
    void rebuild(bool topologyChanged);

    struct Private;
    std::unique_ptr<Private> d;
};

} // namespace wfm
