#include "wfm/widgets/LinesScene.h"

#include "wfm/Error.h"

#include <vtkActor.h>
#include <vtkCellArray.h>
#include <vtkNew.h>
#include <vtkPoints.h>
#include <vtkPolyData.h>
#include <vtkPolyDataMapper.h>
#include <vtkProperty.h>

namespace wfm {

struct LinesScene::Private
{
    vtkNew<vtkPoints> points;
    vtkNew<vtkCellArray> lines;
    vtkNew<vtkPolyData> poly;
    vtkNew<vtkPolyDataMapper> mapper;
    vtkNew<vtkActor> actor;
    int count = 0;
    bool customColour = false;
    double width = 1.0;
    double scale = 1.0;
};

LinesScene::LinesScene()
    : d(std::make_unique<Private>())
{
    d->poly->SetPoints(d->points);
    d->poly->SetLines(d->lines);
    d->mapper->SetInputData(d->poly);
    d->actor->SetMapper(d->mapper);
    d->actor->GetProperty()->SetOpacity(0.45);
    d->actor->GetProperty()->SetLighting(false);
    d->actor->GetProperty()->SetColor(0.5, 0.5, 0.5);
    registerProp(d->actor);
    setPropShown(d->actor, false);
}

LinesScene::~LinesScene() = default;

void LinesScene::setSegments(const std::vector<float>& from, const std::vector<float>& to, int dim)
{
    if (dim < 1 || from.size() != to.size() || from.size() % static_cast<size_t>(dim) != 0) {
        throw ConfigError("LinesScene: segment ends must have the same size, a multiple of dim");
    }
    const int n = static_cast<int>(from.size() / static_cast<size_t>(dim));
    d->points->SetNumberOfPoints(2 * static_cast<vtkIdType>(n));
    auto xyz = [dim](const float* p) {
        return std::array<double, 3> { p[0], dim > 1 ? p[1] : 0.0, dim > 2 ? p[2] : 0.0 };
    };
    d->lines->Reset();
    for (int i = 0; i < n; ++i) {
        const auto a = xyz(from.data() + static_cast<size_t>(i) * dim);
        const auto b = xyz(to.data() + static_cast<size_t>(i) * dim);
        d->points->SetPoint(2 * i, a.data());
        d->points->SetPoint(2 * i + 1, b.data());
        const vtkIdType ids[2] = { 2 * i, 2 * i + 1 };
        d->lines->InsertNextCell(2, ids);
    }
    d->points->Modified();
    d->lines->Modified();
    d->poly->Modified();
    d->count = n;
    setPropShown(d->actor, n > 0);
    requestRender();
}

void LinesScene::clear()
{
    setSegments({}, {}, 1);
}

int LinesScene::segmentCount() const
{
    return d->count;
}

void LinesScene::setColour(const QColor& colour)
{
    d->customColour = true;
    d->actor->GetProperty()->SetColor(colour.redF(), colour.greenF(), colour.blueF());
    requestRender();
}

void LinesScene::setOpacity(double opacity)
{
    d->actor->GetProperty()->SetOpacity(std::clamp(opacity, 0.01, 1.0));
    requestRender();
}

void LinesScene::setLineWidth(double pixels)
{
    d->width = std::max(0.1, pixels);
    d->actor->GetProperty()->SetLineWidth(static_cast<float>(d->width * d->scale));
    requestRender();
}

void LinesScene::applyTheme(const QColor& foreground, const QColor& background)
{
    if (!d->customColour) {
        // Halfway between text and background: visible on both light and dark looks.
        d->actor->GetProperty()->SetColor((foreground.redF() + background.redF()) / 2,
            (foreground.greenF() + background.greenF()) / 2, (foreground.blueF() + background.blueF()) / 2);
    }
}

void LinesScene::applyPixelScale(double scale)
{
    d->scale = scale;
    d->actor->GetProperty()->SetLineWidth(static_cast<float>(d->width * d->scale));
}

} // namespace wfm
