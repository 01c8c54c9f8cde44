#include "SceneHelpers.h"

#include "wfm/widgets/ColourMaps.h"

#include <vtkLegendBoxActor.h>
#include <vtkLookupTable.h>
#include <vtkNew.h>
#include <vtkPolyData.h>
#include <vtkProperty2D.h>
#include <vtkRegularPolygonSource.h>
#include <vtkScalarBarActor.h>
#include <vtkTextProperty.h>

#include <algorithm>
#include <cmath>

namespace wfm::detail {

std::array<double, 3> toRgb(const QColor& colour)
{
    return { colour.redF(), colour.greenF(), colour.blueF() };
}

void fillLegend(vtkLegendBoxActor* legend, const std::vector<LegendEntry>& entries)
{
    vtkNew<vtkRegularPolygonSource> disc;
    disc->SetNumberOfSides(24);
    disc->SetRadius(0.5);
    disc->GeneratePolygonOn();
    disc->GeneratePolylineOff();
    disc->Update();

    legend->SetNumberOfEntries(static_cast<int>(entries.size()));
    for (size_t i = 0; i < entries.size(); ++i) {
        auto rgb = toRgb(entries[i].colour);
        const QByteArray text = entries[i].text.toUtf8();
        legend->SetEntry(static_cast<int>(i), disc->GetOutput(), text.constData(), rgb.data());
    }
    // Normalised viewport coordinates; about 4 % of the height per entry, at most 60 %.
    const double height = std::min(0.6, 0.04 * static_cast<double>(std::max<size_t>(1, entries.size())) + 0.015);
    size_t longest = 1;
    for (const auto& e : entries) {
        longest = std::max<size_t>(longest, static_cast<size_t>(e.text.size()));
    }
    const double width = std::clamp(0.04 + 0.014 * static_cast<double>(longest), 0.1, 0.3);
    legend->GetPositionCoordinate()->SetCoordinateSystemToNormalizedViewport();
    legend->GetPositionCoordinate()->SetValue(0.98 - width, 0.98 - height);
    legend->GetPosition2Coordinate()->SetCoordinateSystemToNormalizedViewport();
    legend->GetPosition2Coordinate()->SetValue(width, height);
}

void styleLegend(vtkLegendBoxActor* legend, const QColor& foreground, const QColor& background)
{
    vtkTextProperty* text = legend->GetEntryTextProperty();
    const auto fg = toRgb(foreground);
    text->SetColor(fg.data());
    text->ShadowOff();
    text->BoldOff();
    text->ItalicOff();
    text->SetFontFamilyToArial();
    legend->BorderOff();
    legend->BoxOff();
    legend->UseBackgroundOn();
    const auto bg = toRgb(background);
    legend->SetBackgroundColor(bg[0], bg[1], bg[2]);
    legend->SetBackgroundOpacity(0.75);
    legend->SetPadding(4);
}

void styleScalarBar(vtkScalarBarActor* bar, const QColor& foreground)
{
    const auto fg = toRgb(foreground);
    for (vtkTextProperty* text : { bar->GetTitleTextProperty(), bar->GetLabelTextProperty() }) {
        text->SetColor(fg.data());
        text->ShadowOff();
        text->ItalicOff();
        text->SetFontFamilyToArial();
    }
    bar->GetTitleTextProperty()->BoldOn();
    bar->GetLabelTextProperty()->BoldOff();
    bar->SetOrientationToVertical();
    bar->SetNumberOfLabels(5);
    bar->SetLabelFormat("%.3g");
    bar->GetPositionCoordinate()->SetCoordinateSystemToNormalizedViewport();
    bar->GetPositionCoordinate()->SetValue(0.88, 0.12);
    bar->SetWidth(0.1);
    bar->SetHeight(0.76);
}

void scaleScalarBarText(vtkScalarBarActor* bar, double pixelScale)
{
    constexpr double kTitlePixels = 16.0;
    constexpr double kLabelPixels = 12.0;
    bar->UnconstrainedFontSizeOn();
    bar->SetVerticalTitleSeparation(static_cast<int>(std::lround(6.0 * pixelScale)));
    bar->GetTitleTextProperty()->SetFontSize(static_cast<int>(std::lround(kTitlePixels * pixelScale)));
    bar->GetLabelTextProperty()->SetFontSize(static_cast<int>(std::lround(kLabelPixels * pixelScale)));
}

void fillSequentialLookupTable(vtkLookupTable* lut, double lo, double hi)
{
    constexpr int kColours = 256;
    lut->SetNumberOfTableValues(kColours);
    lut->SetTableRange(lo, hi);
    for (int i = 0; i < kColours; ++i) {
        const QColor c = colours::sequential(static_cast<double>(i) / (kColours - 1));
        lut->SetTableValue(i, c.redF(), c.greenF(), c.blueF(), 1.0);
    }
    lut->Build();
}

} // namespace wfm::detail
