#pragma once

#include <QColor>
#include <QString>

#include <vtkSmartPointer.h>

#include <array>
#include <vector>

class vtkLegendBoxActor;
class vtkLookupTable;
class vtkScalarBarActor;

namespace wfm::detail {

/// A QColor as VTK's double RGB.
std::array<double, 3> toRgb(const QColor& colour);

struct LegendEntry
{
    QString text;
    QColor colour;
};

/// Fills `legend` with one disc symbol per entry and places it in the top-right corner, its box
/// growing with the number of entries (text is scaled by VTK to fit the box).
void fillLegend(vtkLegendBoxActor* legend, const std::vector<LegendEntry>& entries);

/// Text colour and translucent background of a legend for the view's palette.
void styleLegend(vtkLegendBoxActor* legend, const QColor& foreground, const QColor& background);

/// Places a vertical scalar bar on the right and colours its text.
void styleScalarBar(vtkScalarBarActor* bar, const QColor& foreground);
/// Fixed text sizes for the scalar bar, in logical pixels times `pixelScale` (VTK's own fitting
/// blows a one-letter title such as "x" up to the width of the bar).
void scaleScalarBarText(vtkScalarBarActor* bar, double pixelScale);

/// Fills `lut` with the sequential colour map (ColourMaps::sequential) over [lo, hi].
void fillSequentialLookupTable(vtkLookupTable* lut, double lo, double hi);

} // namespace wfm::detail
