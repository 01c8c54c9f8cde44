#include "wfm/widgets/CloudScene.h"

#include "SceneHelpers.h"
#include "wfm/Error.h"
#include "wfm/Snapshot.h"
#include "wfm/widgets/ColourMaps.h"

#include <vtkActor.h>
#include <vtkCellArray.h>
#include <vtkLegendBoxActor.h>
#include <vtkLookupTable.h>
#include <vtkNew.h>
#include <vtkPointData.h>
#include <vtkPoints.h>
#include <vtkPolyData.h>
#include <vtkPolyDataMapper.h>
#include <vtkProperty.h>
#include <vtkScalarBarActor.h>
#include <vtkUnsignedCharArray.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace wfm {
namespace {

constexpr QRgb kNoSourceColour = 0xff9a9a9a;

void checkSnapshot(const CloudSnapshot& s)
{
    WFM_CHECK(s.count >= 0 && s.maxPoints >= 0 && s.dim >= 1, "cloud snapshot: bad shape [", s.count,
        ", ", s.maxPoints, ", ", s.dim, "]");
    const size_t n = static_cast<size_t>(s.count) * s.maxPoints;
    WFM_CHECK(s.points.size() == n * s.dim, "cloud snapshot: points has ", s.points.size(),
        " values, expected ", n * s.dim);
    WFM_CHECK(s.weights.size() == n, "cloud snapshot: weights has ", s.weights.size(),
        " values, expected ", n);
    WFM_CHECK(s.labels.empty() || s.labels.size() == static_cast<size_t>(s.count),
        "cloud snapshot: labels has ", s.labels.size(), " entries, expected 0 or ", s.count);
}

} // namespace

struct CloudScene::Private
{
    vtkNew<vtkPoints> points;
    vtkNew<vtkCellArray> verts;
    vtkNew<vtkPolyData> poly;
    vtkNew<vtkUnsignedCharArray> colours;
    vtkNew<vtkPolyDataMapper> mapper;
    vtkNew<vtkActor> actor;
    vtkNew<vtkLegendBoxActor> legend;
    vtkNew<vtkScalarBarActor> scalarBar;
    vtkNew<vtkLookupTable> lut;

    // What is shown: drawn point p comes from cloud shown[pointSlot[p]], point pointIndex[p].
    int count = 0;
    int maxPoints = 0;
    int dim = 0;
    std::vector<int> shown;
    std::vector<std::int64_t> slotLabels;
    std::vector<std::string> labelNames;
    bool hasLabels = false;
    std::vector<int> pointSlot;
    std::vector<int> pointIndex;

    ColourMode mode = ColourMode::Label;
    std::vector<float> scalars; // snapshot layout [count * maxPoints]
    QString scalarTitle;
    std::pair<double, double> scalarRange { 0.0, 0.0 };
    std::vector<QRgb> sourceColours; // per source point (alpha 0 marks padding)
    std::vector<int> sourcePointOf;

    double pointSize = 7.0;
    double pixelScale = 1.0;
    bool legendVisible = true;

    QString labelText(std::int64_t label, int slot) const
    {
        if (!hasLabels) {
            return QStringLiteral("cloud %1").arg(shown[static_cast<size_t>(slot)]);
        }
        if (label >= 0 && static_cast<size_t>(label) < labelNames.size() && !labelNames[static_cast<size_t>(label)].empty()) {
            return QString::fromStdString(labelNames[static_cast<size_t>(label)]);
        }
        return QStringLiteral("label %1").arg(label);
    }

    void setColour(vtkIdType p, const QColor& c)
    {
        unsigned char* rgba = colours->GetPointer(4 * p);
        rgba[0] = static_cast<unsigned char>(c.red());
        rgba[1] = static_cast<unsigned char>(c.green());
        rgba[2] = static_cast<unsigned char>(c.blue());
        rgba[3] = 255;
    }
};

CloudScene::CloudScene()
    : d(std::make_unique<Private>())
{
    d->points->SetDataTypeToFloat();
    d->poly->SetPoints(d->points);
    d->poly->SetVerts(d->verts);
    d->colours->SetNumberOfComponents(4);
    d->colours->SetName("colours");
    d->poly->GetPointData()->SetScalars(d->colours);

    d->mapper->SetInputData(d->poly);
    d->mapper->SetColorModeToDirectScalars();
    d->mapper->SetScalarModeToUsePointData();
    d->mapper->ScalarVisibilityOn();
    d->actor->SetMapper(d->mapper);
    vtkProperty* prop = d->actor->GetProperty();
    prop->SetRepresentationToPoints();
    prop->RenderPointsAsSpheresOn();
    prop->SetPointSize(d->pointSize);
    prop->SetAmbient(0.25);
    prop->SetDiffuse(0.8);
    prop->SetSpecular(0.15);
    prop->SetSpecularPower(20.0);

    d->scalarBar->SetLookupTable(d->lut);
    detail::fillSequentialLookupTable(d->lut, 0.0, 1.0);
    detail::styleScalarBar(d->scalarBar, Qt::black);
    detail::scaleScalarBarText(d->scalarBar, d->pixelScale);
    detail::styleLegend(d->legend, Qt::black, Qt::white);

    registerProp(d->actor);
    registerProp(d->legend);
    registerProp(d->scalarBar);
    setPropShown(d->legend, false);
    setPropShown(d->scalarBar, false);
}

CloudScene::~CloudScene()
{
    detach();
}

void CloudScene::setCloud(const CloudSnapshot& snapshot, int index)
{
    setClouds(snapshot, { index });
}

void CloudScene::setClouds(const CloudSnapshot& snapshot, const std::vector<int>& indices)
{
    checkSnapshot(snapshot);
    for (int k : indices) {
        WFM_CHECK(k >= 0 && k < snapshot.count, "cloud index ", k, " out of range [0, ",
            snapshot.count, ")");
    }
    // Keep scalar colouring only if the new snapshot has the same layout.
    if (d->mode == ColourMode::Scalar
        && d->scalars.size() != static_cast<size_t>(snapshot.count) * snapshot.maxPoints) {
        d->mode = ColourMode::Label;
        d->scalars.clear();
    }

    d->count = snapshot.count;
    d->maxPoints = snapshot.maxPoints;
    d->dim = snapshot.dim;
    d->shown = indices;
    d->hasLabels = !snapshot.labels.empty();
    d->labelNames = snapshot.labelNames;
    d->slotLabels.clear();
    for (size_t slot = 0; slot < indices.size(); ++slot) {
        d->slotLabels.push_back(d->hasLabels ? snapshot.labels[static_cast<size_t>(indices[slot])]
                                             : static_cast<std::int64_t>(slot));
    }

    d->pointSlot.clear();
    d->pointIndex.clear();
    d->points->Reset();
    for (size_t slot = 0; slot < indices.size(); ++slot) {
        const int k = indices[slot];
        const float* cloud = snapshot.cloud(k);
        const float* weights = snapshot.weights.data() + static_cast<size_t>(k) * snapshot.maxPoints;
        for (int i = 0; i < snapshot.maxPoints; ++i) {
            if (!(weights[i] > 0.0f)) {
                continue;
            }
            const float* x = cloud + static_cast<size_t>(i) * snapshot.dim;
            const float px = x[0];
            const float py = snapshot.dim > 1 ? x[1] : 0.0f;
            const float pz = snapshot.dim > 2 ? x[2] : 0.0f;
            d->points->InsertNextPoint(px, py, pz);
            d->pointSlot.push_back(static_cast<int>(slot));
            d->pointIndex.push_back(i);
        }
    }
    rebuildGeometry();
}

void CloudScene::clear()
{
    d->count = d->maxPoints = d->dim = 0;
    d->shown.clear();
    d->slotLabels.clear();
    d->labelNames.clear();
    d->hasLabels = false;
    d->pointSlot.clear();
    d->pointIndex.clear();
    d->points->Reset();
    if (d->mode == ColourMode::Scalar) {
        d->mode = ColourMode::Label;
        d->scalars.clear();
    }
    rebuildGeometry();
}

void CloudScene::rebuildGeometry()
{
    const auto n = static_cast<vtkIdType>(d->pointSlot.size());
    d->points->Modified();
    d->verts->Reset();
    // One poly-vertex cell per cloud would also work; single vertices keep picking simple.
    d->verts->AllocateExact(n, n);
    for (vtkIdType p = 0; p < n; ++p) {
        d->verts->InsertNextCell(1, &p);
    }
    d->verts->Modified();
    d->colours->SetNumberOfTuples(n);
    d->poly->Modified();
    applyColours();
}

void CloudScene::applyColours()
{
    const auto n = static_cast<vtkIdType>(d->pointSlot.size());
    bool showLegend = false;
    bool showBar = false;
    switch (d->mode) {
    case ColourMode::Label: {
        std::vector<detail::LegendEntry> entries;
        std::vector<std::int64_t> seen;
        for (size_t slot = 0; slot < d->shown.size(); ++slot) {
            const std::int64_t label = d->slotLabels[slot];
            if (std::find(seen.begin(), seen.end(), label) == seen.end()) {
                seen.push_back(label);
                entries.push_back({ d->labelText(label, static_cast<int>(slot)), labelColour(label) });
            }
        }
        for (vtkIdType p = 0; p < n; ++p) {
            d->setColour(p, labelColour(d->slotLabels[static_cast<size_t>(d->pointSlot[static_cast<size_t>(p)])]));
        }
        detail::fillLegend(d->legend, entries);
        showLegend = !entries.empty();
        break;
    }
    case ColourMode::Scalar: {
        double lo = d->scalarRange.first;
        double hi = d->scalarRange.second;
        if (!(lo < hi)) {
            lo = std::numeric_limits<double>::infinity();
            hi = -lo;
            for (vtkIdType p = 0; p < n; ++p) {
                const size_t at = static_cast<size_t>(d->shown[static_cast<size_t>(d->pointSlot[static_cast<size_t>(p)])])
                        * d->maxPoints
                    + d->pointIndex[static_cast<size_t>(p)];
                const double v = d->scalars[at];
                if (std::isfinite(v)) {
                    lo = std::min(lo, v);
                    hi = std::max(hi, v);
                }
            }
            if (!(lo <= hi)) {
                lo = 0.0;
                hi = 1.0;
            }
            if (hi - lo < 1e-12 * std::max(1.0, std::abs(lo))) {
                hi = lo + 1.0;
            }
        }
        for (vtkIdType p = 0; p < n; ++p) {
            const size_t at = static_cast<size_t>(d->shown[static_cast<size_t>(d->pointSlot[static_cast<size_t>(p)])])
                    * d->maxPoints
                + d->pointIndex[static_cast<size_t>(p)];
            const double v = d->scalars[at];
            d->setColour(p, std::isfinite(v) ? colours::sequential((v - lo) / (hi - lo)) : QColor(kNoSourceColour));
        }
        detail::fillSequentialLookupTable(d->lut, lo, hi);
        const QByteArray title = d->scalarTitle.toUtf8();
        d->scalarBar->SetTitle(title.constData());
        showBar = n > 0;
        break;
    }
    case ColourMode::Correspondence:
        for (vtkIdType p = 0; p < n; ++p) {
            const int i = d->pointIndex[static_cast<size_t>(p)];
            int j = i;
            if (!d->sourcePointOf.empty()) {
                j = static_cast<size_t>(i) < d->sourcePointOf.size() ? d->sourcePointOf[static_cast<size_t>(i)] : -1;
            }
            QRgb c = kNoSourceColour;
            if (j >= 0 && static_cast<size_t>(j) < d->sourceColours.size() && qAlpha(d->sourceColours[static_cast<size_t>(j)]) != 0) {
                c = d->sourceColours[static_cast<size_t>(j)];
            }
            d->setColour(p, QColor(c));
        }
        break;
    }
    d->colours->Modified();
    setPropShown(d->legend, showLegend && d->legendVisible);
    setPropShown(d->scalarBar, showBar && d->legendVisible);
    requestRender();
}

int CloudScene::pointCount() const
{
    return static_cast<int>(d->pointSlot.size());
}

const std::vector<int>& CloudScene::shownClouds() const
{
    return d->shown;
}

int CloudScene::dimension() const
{
    return d->dim;
}

void CloudScene::setPointSize(double pixels)
{
    WFM_CHECK(pixels > 0.0, "point size must be positive, got ", pixels);
    d->pointSize = pixels;
    d->actor->GetProperty()->SetPointSize(static_cast<float>(d->pointSize * d->pixelScale));
    requestRender();
}

double CloudScene::pointSize() const
{
    return d->pointSize;
}

void CloudScene::colourByLabel()
{
    d->mode = ColourMode::Label;
    d->scalars.clear();
    applyColours();
}

void CloudScene::colourByScalar(
    const std::vector<float>& values, const QString& title, std::pair<double, double> range)
{
    const size_t expected = static_cast<size_t>(d->count) * d->maxPoints;
    WFM_CHECK(values.size() == expected, "colourByScalar: ", values.size(),
        " values, expected count * maxPoints = ", expected);
    d->mode = ColourMode::Scalar;
    d->scalars = values;
    d->scalarTitle = title;
    d->scalarRange = range;
    applyColours();
}

void CloudScene::setCorrespondenceColours(
    const CloudSnapshot& source, int sourceIndex, const std::vector<int>& sourcePointOf)
{
    checkSnapshot(source);
    WFM_CHECK(sourceIndex >= 0 && sourceIndex < source.count, "source cloud index ", sourceIndex,
        " out of range [0, ", source.count, ")");
    for (int j : sourcePointOf) {
        WFM_CHECK(j >= 0 && j < source.maxPoints, "source point index ", j, " out of range [0, ",
            source.maxPoints, ")");
    }
    const float* cloud = source.cloud(sourceIndex);
    const float* weights = source.weights.data() + static_cast<size_t>(sourceIndex) * source.maxPoints;
    const int axes = std::min(source.dim, 3);
    double lo[3] = { 0, 0, 0 };
    double hi[3] = { 0, 0, 0 };
    bool any = false;
    for (int i = 0; i < source.maxPoints; ++i) {
        if (!(weights[i] > 0.0f)) {
            continue;
        }
        for (int a = 0; a < axes; ++a) {
            const double x = cloud[static_cast<size_t>(i) * source.dim + a];
            lo[a] = any ? std::min(lo[a], x) : x;
            hi[a] = any ? std::max(hi[a], x) : x;
        }
        any = true;
    }
    std::vector<QRgb> palette(static_cast<size_t>(source.maxPoints), 0u);
    for (int i = 0; i < source.maxPoints; ++i) {
        if (!(weights[i] > 0.0f)) {
            continue;
        }
        double u[3] = { 0.5, 0.5, 0.5 };
        for (int a = 0; a < axes; ++a) {
            const double extent = hi[a] - lo[a];
            u[a] = extent > 0.0 ? (cloud[static_cast<size_t>(i) * source.dim + a] - lo[a]) / extent : 0.5;
        }
        const QColor c = axes >= 3 ? colours::position3D(u[0], u[1], u[2]) : colours::position2D(u[0], u[1]);
        palette[static_cast<size_t>(i)] = c.rgba();
    }
    d->mode = ColourMode::Correspondence;
    d->scalars.clear();
    d->sourceColours = std::move(palette);
    d->sourcePointOf = sourcePointOf;
    applyColours();
}

CloudScene::ColourMode CloudScene::colourMode() const
{
    return d->mode;
}

QString CloudScene::scalarTitle() const
{
    return d->mode == ColourMode::Scalar ? d->scalarTitle : QString();
}

bool CloudScene::isScalarBarShown() const
{
    return d->scalarBar->GetVisibility() != 0;
}

double CloudScene::rightOverlayFraction() const
{
    // The bar and its labels span x in [0.88, 0.98] of the viewport (styleScalarBar).
    return isScalarBarShown() ? 0.14 : 0.0;
}

void CloudScene::setLegendVisible(bool visible)
{
    d->legendVisible = visible;
    applyColours();
}

bool CloudScene::isLegendVisible() const
{
    return d->legendVisible;
}

QColor CloudScene::pointColour(int i) const
{
    if (i < 0 || i >= pointCount()) {
        return {};
    }
    const unsigned char* rgba = d->colours->GetPointer(4 * static_cast<vtkIdType>(i));
    return QColor(rgba[0], rgba[1], rgba[2], rgba[3]);
}

std::array<double, 3> CloudScene::pointPosition(int i) const
{
    std::array<double, 3> p { 0.0, 0.0, 0.0 };
    if (i >= 0 && i < pointCount()) {
        d->points->GetPoint(static_cast<vtkIdType>(i), p.data());
    }
    return p;
}

QColor CloudScene::labelColour(std::int64_t label)
{
    return colours::categorical(label);
}

void CloudScene::applyTheme(const QColor& foreground, const QColor& background)
{
    detail::styleLegend(d->legend, foreground, background);
    detail::styleScalarBar(d->scalarBar, foreground);
    requestRender();
}

void CloudScene::applyPixelScale(double scale)
{
    d->pixelScale = scale;
    d->actor->GetProperty()->SetPointSize(static_cast<float>(d->pointSize * d->pixelScale));
    detail::scaleScalarBarText(d->scalarBar, d->pixelScale);
}

} // namespace wfm
