#pragma once

#include "wfm/widgets/Scene.h"

#include <QColor>

#include <memory>
#include <vector>

namespace wfm {

/// Straight segments from points a_i to b_i (e.g. transport lines from x to T(x)), drawn as
/// thin, semi-transparent lines; coordinates as in CloudScene (2-D data in the z = 0 plane, the
/// first three coordinates otherwise).
class LinesScene : public Scene
{
public:
    LinesScene();
    ~LinesScene() override;

    /// Segments from `from[i]` to `to[i]`, both row-major [n, dim]. Throws ConfigError when the
    /// sizes differ or are not multiples of dim (dim >= 1).
    void setSegments(const std::vector<float>& from, const std::vector<float>& to, int dim);
    void clear();
    int segmentCount() const;

    /// Line colour (default: a grey that suits the palette) and opacity in (0, 1] (default 0.45).
    void setColour(const QColor& colour);
    void setOpacity(double opacity);
    /// Line width in device-independent pixels (default 1).
    void setLineWidth(double pixels);

protected:
    void applyTheme(const QColor& foreground, const QColor& background) override;
    void applyPixelScale(double scale) override;

private:
    struct Private;
    std::unique_ptr<Private> d;
};

} // namespace wfm
