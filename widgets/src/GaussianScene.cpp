#include "wfm/widgets/GaussianScene.h"

#include "SceneHelpers.h"
#include "wfm/Error.h"
#include "wfm/Snapshot.h"
#include "wfm/widgets/ColourMaps.h"
#include "wfm/widgets/SymmetricEigen3.h"

#include <vtkActor.h>
#include <vtkCellArray.h>
#include <vtkFloatArray.h>
#include <vtkGlyph3DMapper.h>
#include <vtkLegendBoxActor.h>
#include <vtkNew.h>
#include <vtkPointData.h>
#include <vtkPoints.h>
#include <vtkPolyData.h>
#include <vtkPolyDataMapper.h>
#include <vtkProperty.h>
#include <vtkSphereSource.h>
#include <vtkUnsignedCharArray.h>

#include <algorithm>
#include <array>
#include <cmath>

namespace wfm {
namespace {

constexpr int kEllipseSegments = 72;
constexpr int kSphereTheta = 24;
constexpr int kSpherePhi = 16;
/// Relative tolerance for symmetry and negative eigenvalues of covariances (float data).
constexpr double kCovarianceTolerance = 1e-4;
/// VTK 9.1's instanced glyph rendering applies the actor's opacity twice (coverage o^2, measured
/// by difference matting); the glyph actor gets sqrt(o) so both methods show coverage o.
double glyphOpacity(double opacity)
{
    return std::sqrt(opacity);
}

/// Smallest drawn radius relative to the largest one of the same Gaussian (keeps normals finite).
constexpr double kMinRelativeRadius = 1e-4;

/// One Gaussian reduced to what is drawn: centre and the linear map A = V diag(r) that takes the
/// unit circle/sphere onto its k-sigma ellipse/ellipsoid.
struct Shape
{
    std::array<double, 3> centre {};
    std::array<double, 3> radii {}; // k * sqrt(eigenvalue), largest first
    std::array<std::array<double, 3>, 3> axes {}; // columns: unit axis directions (rotation)
    QColor colour;
};

void setRgba(unsigned char* out, const QColor& c)
{
    out[0] = static_cast<unsigned char>(c.red());
    out[1] = static_cast<unsigned char>(c.green());
    out[2] = static_cast<unsigned char>(c.blue());
    out[3] = 255;
}

} // namespace

struct GaussianScene::Private
{
    // 2-D: ellipse rings share points and colours between the fill and the outline.
    vtkNew<vtkPoints> ringPoints;
    vtkNew<vtkUnsignedCharArray> ringColours;
    vtkNew<vtkCellArray> fillCells;
    vtkNew<vtkCellArray> outlineCells;
    vtkNew<vtkPolyData> fillPoly;
    vtkNew<vtkPolyData> outlinePoly;
    vtkNew<vtkPolyDataMapper> fillMapper;
    vtkNew<vtkPolyDataMapper> outlineMapper;
    vtkNew<vtkActor> fillActor;
    vtkNew<vtkActor> outlineActor;

    // Centre markers (2-D and 3-D).
    vtkNew<vtkPoints> centrePoints;
    vtkNew<vtkUnsignedCharArray> centreColours;
    vtkNew<vtkCellArray> centreCells;
    vtkNew<vtkPolyData> centrePoly;
    vtkNew<vtkPolyDataMapper> centreMapper;
    vtkNew<vtkActor> centreActor;

    // 3-D, glyphs: one instance of a unit sphere per Gaussian, scaled then rotated.
    vtkNew<vtkSphereSource> sphere;
    vtkNew<vtkFloatArray> glyphScale;
    vtkNew<vtkFloatArray> glyphOrientation;
    vtkNew<vtkPolyData> glyphInput;
    vtkNew<vtkGlyph3DMapper> glyphMapper;
    vtkNew<vtkActor> glyphActor;

    // 3-D, mesh: every sphere transformed on the CPU into one polydata.
    vtkNew<vtkPoints> meshPoints;
    vtkNew<vtkFloatArray> meshNormals;
    vtkNew<vtkUnsignedCharArray> meshColours;
    vtkNew<vtkCellArray> meshCells;
    vtkNew<vtkPolyData> meshPoly;
    vtkNew<vtkPolyDataMapper> meshMapper;
    vtkNew<vtkActor> meshActor;

    vtkNew<vtkLegendBoxActor> legend;

    std::vector<Shape> shapes;
    int dim = 0;
    bool ellipsoids = false;
    std::vector<detail::LegendEntry> legendEntries;

    double sigma = 2.0;
    double fillOpacity = 0.3;
    double surfaceOpacity = 0.45;
    EllipsoidMethod method = EllipsoidMethod::Glyph;
    bool legendVisible = true;
    double pixelScale = 1.0;

    // Unit sphere template for the mesh method.
    std::vector<std::array<double, 3>> templatePoints;
    std::vector<vtkIdType> templateTriangles; // 3 ids per triangle

    void buildTemplate()
    {
        sphere->Update();
        vtkPolyData* s = sphere->GetOutput();
        templatePoints.resize(static_cast<size_t>(s->GetNumberOfPoints()));
        for (vtkIdType i = 0; i < s->GetNumberOfPoints(); ++i) {
            s->GetPoint(i, templatePoints[static_cast<size_t>(i)].data());
        }
        templateTriangles.clear();
        vtkCellArray* polys = s->GetPolys();
        vtkIdType npts = 0;
        const vtkIdType* pts = nullptr;
        for (polys->InitTraversal(); polys->GetNextCell(npts, pts);) {
            for (vtkIdType k = 1; k + 1 < npts; ++k) {
                templateTriangles.insert(templateTriangles.end(), { pts[0], pts[k], pts[k + 1] });
            }
        }
    }

    void applySizes()
    {
        outlineActor->GetProperty()->SetLineWidth(static_cast<float>(2.0 * pixelScale));
        centreActor->GetProperty()->SetPointSize(static_cast<float>(8.0 * pixelScale));
    }
};

GaussianScene::GaussianScene()
    : d(std::make_unique<Private>())
{
    d->ringPoints->SetDataTypeToFloat();
    d->ringColours->SetNumberOfComponents(4);
    d->fillPoly->SetPoints(d->ringPoints);
    d->fillPoly->SetPolys(d->fillCells);
    d->fillPoly->GetPointData()->SetScalars(d->ringColours);
    d->outlinePoly->SetPoints(d->ringPoints);
    d->outlinePoly->SetLines(d->outlineCells);
    d->outlinePoly->GetPointData()->SetScalars(d->ringColours);
    for (vtkPolyDataMapper* m : { d->fillMapper.Get(), d->outlineMapper.Get(), d->centreMapper.Get(), d->meshMapper.Get() }) {
        m->SetColorModeToDirectScalars();
        m->SetScalarModeToUsePointData();
        m->ScalarVisibilityOn();
    }
    d->fillMapper->SetInputData(d->fillPoly);
    d->outlineMapper->SetInputData(d->outlinePoly);
    d->fillActor->SetMapper(d->fillMapper);
    d->fillActor->GetProperty()->SetOpacity(d->fillOpacity);
    d->fillActor->GetProperty()->LightingOff();
    d->outlineActor->SetMapper(d->outlineMapper);
    d->outlineActor->GetProperty()->LightingOff();

    d->centrePoints->SetDataTypeToFloat();
    d->centreColours->SetNumberOfComponents(4);
    d->centrePoly->SetPoints(d->centrePoints);
    d->centrePoly->SetVerts(d->centreCells);
    d->centrePoly->GetPointData()->SetScalars(d->centreColours);
    d->centreMapper->SetInputData(d->centrePoly);
    d->centreActor->SetMapper(d->centreMapper);
    d->centreActor->GetProperty()->SetRepresentationToPoints();
    d->centreActor->GetProperty()->RenderPointsAsSpheresOn();

    d->sphere->SetRadius(1.0);
    d->sphere->SetThetaResolution(kSphereTheta);
    d->sphere->SetPhiResolution(kSpherePhi);
    d->sphere->LatLongTessellationOn();
    d->buildTemplate();

    d->glyphScale->SetNumberOfComponents(3);
    d->glyphScale->SetName("scale");
    d->glyphOrientation->SetNumberOfComponents(4);
    d->glyphOrientation->SetName("orientation");
    d->glyphInput->SetPoints(d->centrePoints);
    d->glyphInput->GetPointData()->AddArray(d->glyphScale);
    d->glyphInput->GetPointData()->AddArray(d->glyphOrientation);
    d->glyphInput->GetPointData()->SetScalars(d->centreColours);
    d->glyphMapper->SetInputData(d->glyphInput);
    d->glyphMapper->SetSourceConnection(d->sphere->GetOutputPort());
    d->glyphMapper->ScalingOn();
    d->glyphMapper->SetScaleModeToScaleByVectorComponents();
    d->glyphMapper->SetScaleArray("scale");
    d->glyphMapper->SetScaleFactor(1.0);
    d->glyphMapper->OrientOn();
    d->glyphMapper->SetOrientationModeToQuaternion();
    d->glyphMapper->SetOrientationArray("orientation");
    d->glyphMapper->SetColorModeToDirectScalars();
    d->glyphMapper->SetScalarModeToUsePointData();
    d->glyphMapper->ScalarVisibilityOn();
    d->glyphActor->SetMapper(d->glyphMapper);

    d->meshPoints->SetDataTypeToFloat();
    d->meshNormals->SetNumberOfComponents(3);
    d->meshColours->SetNumberOfComponents(4);
    d->meshPoly->SetPoints(d->meshPoints);
    d->meshPoly->SetPolys(d->meshCells);
    d->meshPoly->GetPointData()->SetNormals(d->meshNormals);
    d->meshPoly->GetPointData()->SetScalars(d->meshColours);
    d->meshMapper->SetInputData(d->meshPoly);
    d->meshActor->SetMapper(d->meshMapper);

    d->glyphActor->GetProperty()->SetOpacity(glyphOpacity(d->surfaceOpacity));
    d->meshActor->GetProperty()->SetOpacity(d->surfaceOpacity);
    for (vtkActor* a : { d->glyphActor.Get(), d->meshActor.Get() }) {
        vtkProperty* p = a->GetProperty();
        p->SetAmbient(0.2);
        p->SetDiffuse(0.75);
        p->SetSpecular(0.25);
        p->SetSpecularPower(30.0);
        // One translucent layer per ellipsoid (front faces), the same with either method.
        p->BackfaceCullingOn();
    }

    detail::styleLegend(d->legend, Qt::black, Qt::white);
    d->applySizes();

    for (vtkProp* p : std::initializer_list<vtkProp*> { d->fillActor, d->outlineActor, d->glyphActor,
             d->meshActor, d->centreActor, d->legend }) {
        registerProp(p);
        setPropShown(p, false);
    }
}

GaussianScene::~GaussianScene()
{
    detach();
}

void GaussianScene::setGaussians(const GaussianSnapshot& s)
{
    WFM_CHECK(s.count >= 0 && s.dim >= 1, "gaussian snapshot: bad shape [", s.count, ", ", s.dim, "]");
    const auto count = static_cast<size_t>(s.count);
    const auto dim = static_cast<size_t>(s.dim);
    WFM_CHECK(s.means.size() == count * dim, "gaussian snapshot: means has ", s.means.size(),
        " values, expected ", count * dim);
    WFM_CHECK(s.covariances.size() == count * dim * dim, "gaussian snapshot: covariances has ",
        s.covariances.size(), " values, expected ", count * dim * dim);
    WFM_CHECK(s.labels.empty() || s.labels.size() == count, "gaussian snapshot: labels has ",
        s.labels.size(), " entries, expected 0 or ", count);

    const bool ellipsoids = s.dim >= 3;
    std::vector<Shape> shapes(count);
    for (size_t g = 0; g < count; ++g) {
        const float* m = s.means.data() + g * dim;
        const float* c = s.covariances.data() + g * dim * dim;
        const auto at = [&](size_t i, size_t j) { return static_cast<double>(c[i * dim + j]); };
        const size_t block = std::min<size_t>(dim, 3);
        double scale = 0.0;
        for (size_t i = 0; i < block; ++i) {
            for (size_t j = 0; j < block; ++j) {
                WFM_CHECK(std::isfinite(at(i, j)), "gaussian ", g, ": covariance is not finite");
                scale = std::max(scale, std::abs(at(i, j)));
            }
        }
        for (size_t i = 0; i < block; ++i) {
            for (size_t j = i + 1; j < block; ++j) {
                WFM_CHECK(std::abs(at(i, j) - at(j, i)) <= kCovarianceTolerance * scale,
                    "gaussian ", g, ": covariance is not symmetric");
            }
        }
        Shape& shape = shapes[g];
        for (size_t i = 0; i < block; ++i) {
            shape.centre[i] = m[i];
            WFM_CHECK(std::isfinite(shape.centre[i]), "gaussian ", g, ": mean is not finite");
        }
        std::array<double, 3> values {};
        if (ellipsoids) {
            std::array<double, 9> a {};
            for (size_t i = 0; i < 3; ++i) {
                for (size_t j = 0; j < 3; ++j) {
                    a[i * 3 + j] = 0.5 * (at(i, j) + at(j, i));
                }
            }
            const SymmetricEigen3 eig = symmetricEigen3(a);
            values = eig.values;
            shape.axes = eig.vectors;
        } else if (dim == 2) {
            // Closed form for 2x2: eigenvalues (a+c)/2 +- sqrt(((a-c)/2)^2 + b^2).
            const double a = at(0, 0);
            const double b = 0.5 * (at(0, 1) + at(1, 0));
            const double cc = at(1, 1);
            const double mid = 0.5 * (a + cc);
            const double rad = std::hypot(0.5 * (a - cc), b);
            values = { mid + rad, mid - rad, 0.0 };
            const double phi = 0.5 * std::atan2(2.0 * b, a - cc);
            shape.axes = { { { std::cos(phi), -std::sin(phi), 0.0 }, { std::sin(phi), std::cos(phi), 0.0 },
                { 0.0, 0.0, 1.0 } } };
        } else {
            values = { at(0, 0), 0.0, 0.0 };
            shape.axes = { { { 1.0, 0.0, 0.0 }, { 0.0, 1.0, 0.0 }, { 0.0, 0.0, 1.0 } } };
        }
        for (double v : values) {
            WFM_CHECK(v >= -kCovarianceTolerance * scale, "gaussian ", g,
                ": covariance is not positive semi-definite (eigenvalue ", v, ")");
        }
        for (size_t i = 0; i < 3; ++i) {
            shape.radii[i] = d->sigma * std::sqrt(std::max(values[i], 0.0));
        }
        const std::int64_t label = s.labels.empty() ? static_cast<std::int64_t>(g) : s.labels[g];
        shape.colour = colours::categorical(label);
    }

    std::vector<detail::LegendEntry> entries;
    if (!s.labels.empty() && !s.labelNames.empty()) {
        std::vector<std::int64_t> seen;
        for (std::int64_t label : s.labels) {
            if (std::find(seen.begin(), seen.end(), label) != seen.end()) {
                continue;
            }
            seen.push_back(label);
            QString text = QStringLiteral("label %1").arg(label);
            if (label >= 0 && static_cast<size_t>(label) < s.labelNames.size()
                && !s.labelNames[static_cast<size_t>(label)].empty()) {
                text = QString::fromStdString(s.labelNames[static_cast<size_t>(label)]);
            }
            entries.push_back({ text, colours::categorical(label) });
        }
    }

    const bool topologyChanged = shapes.size() != d->shapes.size() || ellipsoids != d->ellipsoids;
    d->shapes = std::move(shapes);
    d->dim = s.dim;
    d->ellipsoids = ellipsoids;
    d->legendEntries = std::move(entries);
    rebuild(topologyChanged);
}

void GaussianScene::clear()
{
    d->shapes.clear();
    d->dim = 0;
    d->legendEntries.clear();
    rebuild(true);
}

int GaussianScene::count() const
{
    return static_cast<int>(d->shapes.size());
}

bool GaussianScene::drawsEllipsoids() const
{
    return d->ellipsoids && !d->shapes.empty();
}

void GaussianScene::rebuild(bool topologyChanged)
{
    const auto n = static_cast<vtkIdType>(d->shapes.size());

    // Centres (both representations; the glyph input shares these points and colours).
    d->centrePoints->SetNumberOfPoints(n);
    d->centreColours->SetNumberOfTuples(n);
    for (vtkIdType g = 0; g < n; ++g) {
        const Shape& s = d->shapes[static_cast<size_t>(g)];
        d->centrePoints->SetPoint(g, s.centre.data());
        setRgba(d->centreColours->GetPointer(4 * g), s.colour);
    }
    if (topologyChanged) {
        d->centreCells->Reset();
        for (vtkIdType g = 0; g < n; ++g) {
            d->centreCells->InsertNextCell(1, &g);
        }
        d->centreCells->Modified();
    }
    d->centrePoints->Modified();
    d->centreColours->Modified();
    d->centrePoly->Modified();

    const bool flat = !d->ellipsoids && n > 0;
    if (!d->ellipsoids) {
        const vtkIdType ring = kEllipseSegments;
        d->ringPoints->SetNumberOfPoints(n * ring);
        d->ringColours->SetNumberOfTuples(n * ring);
        for (vtkIdType g = 0; g < n; ++g) {
            const Shape& s = d->shapes[static_cast<size_t>(g)];
            for (vtkIdType k = 0; k < ring; ++k) {
                const double t = 2.0 * M_PI * static_cast<double>(k) / ring;
                const double u = s.radii[0] * std::cos(t);
                const double v = s.radii[1] * std::sin(t);
                const double x = s.centre[0] + s.axes[0][0] * u + s.axes[0][1] * v;
                const double y = s.centre[1] + s.axes[1][0] * u + s.axes[1][1] * v;
                d->ringPoints->SetPoint(g * ring + k, x, y, 0.0);
                setRgba(d->ringColours->GetPointer(4 * (g * ring + k)), s.colour);
            }
        }
        if (topologyChanged) {
            d->fillCells->Reset();
            d->outlineCells->Reset();
            std::vector<vtkIdType> ids(static_cast<size_t>(ring) + 1);
            for (vtkIdType g = 0; g < n; ++g) {
                for (vtkIdType k = 0; k <= ring; ++k) {
                    ids[static_cast<size_t>(k)] = g * ring + (k % ring);
                }
                d->fillCells->InsertNextCell(ring, ids.data());
                d->outlineCells->InsertNextCell(ring + 1, ids.data());
            }
            d->fillCells->Modified();
            d->outlineCells->Modified();
        }
        d->ringPoints->Modified();
        d->ringColours->Modified();
        d->fillPoly->Modified();
        d->outlinePoly->Modified();
    }

    const bool useGlyph = d->ellipsoids && n > 0 && d->method == EllipsoidMethod::Glyph;
    const bool useMesh = d->ellipsoids && n > 0 && d->method == EllipsoidMethod::Mesh;
    if (useGlyph) {
        d->glyphScale->SetNumberOfTuples(n);
        d->glyphOrientation->SetNumberOfTuples(n);
        for (vtkIdType g = 0; g < n; ++g) {
            const Shape& s = d->shapes[static_cast<size_t>(g)];
            const double floor = std::max(s.radii[0] * kMinRelativeRadius, 1e-12);
            float scale[3];
            for (int a = 0; a < 3; ++a) {
                scale[a] = static_cast<float>(std::max(s.radii[static_cast<size_t>(a)], floor));
            }
            d->glyphScale->SetTypedTuple(g, scale);
            const auto q = rotationToQuaternion(s.axes);
            const float qf[4] = { static_cast<float>(q[0]), static_cast<float>(q[1]),
                static_cast<float>(q[2]), static_cast<float>(q[3]) };
            d->glyphOrientation->SetTypedTuple(g, qf);
        }
        d->glyphScale->Modified();
        d->glyphOrientation->Modified();
        d->glyphInput->Modified();
    }
    if (useMesh) {
        const auto per = static_cast<vtkIdType>(d->templatePoints.size());
        d->meshPoints->SetNumberOfPoints(n * per);
        d->meshNormals->SetNumberOfTuples(n * per);
        d->meshColours->SetNumberOfTuples(n * per);
        auto* pts = static_cast<float*>(d->meshPoints->GetVoidPointer(0));
        float* nrm = d->meshNormals->GetPointer(0);
        unsigned char* rgba = d->meshColours->GetPointer(0);
        for (vtkIdType g = 0; g < n; ++g) {
            const Shape& s = d->shapes[static_cast<size_t>(g)];
            const double floor = std::max(s.radii[0] * kMinRelativeRadius, 1e-12);
            double r[3];
            for (int a = 0; a < 3; ++a) {
                r[a] = std::max(s.radii[static_cast<size_t>(a)], floor);
            }
            // Points: c + V diag(r) p. Normals: (V diag(r))^-T p = V diag(1/r) p, normalised.
            for (vtkIdType i = 0; i < per; ++i) {
                const auto& p = d->templatePoints[static_cast<size_t>(i)];
                const double sp[3] = { r[0] * p[0], r[1] * p[1], r[2] * p[2] };
                const double sn[3] = { p[0] / r[0], p[1] / r[1], p[2] / r[2] };
                double nv[3];
                const size_t o = static_cast<size_t>(g * per + i) * 3;
                for (int row = 0; row < 3; ++row) {
                    const auto& ax = s.axes[static_cast<size_t>(row)];
                    pts[o + row] = static_cast<float>(s.centre[static_cast<size_t>(row)] + ax[0] * sp[0] + ax[1] * sp[1] + ax[2] * sp[2]);
                    nv[row] = ax[0] * sn[0] + ax[1] * sn[1] + ax[2] * sn[2];
                }
                const double len = std::sqrt(nv[0] * nv[0] + nv[1] * nv[1] + nv[2] * nv[2]);
                for (int row = 0; row < 3; ++row) {
                    nrm[o + row] = static_cast<float>(len > 0.0 ? nv[row] / len : 0.0);
                }
                setRgba(rgba + 4 * (g * per + i), s.colour);
            }
        }
        const auto triangles = static_cast<vtkIdType>(d->templateTriangles.size() / 3);
        if (topologyChanged || d->meshCells->GetNumberOfCells() != n * triangles) {
            d->meshCells->Reset();
            d->meshCells->AllocateExact(n * triangles, n * triangles * 3);
            for (vtkIdType g = 0; g < n; ++g) {
                for (vtkIdType t = 0; t < triangles; ++t) {
                    const vtkIdType ids[3] = { g * per + d->templateTriangles[static_cast<size_t>(3 * t)],
                        g * per + d->templateTriangles[static_cast<size_t>(3 * t + 1)],
                        g * per + d->templateTriangles[static_cast<size_t>(3 * t + 2)] };
                    d->meshCells->InsertNextCell(3, ids);
                }
            }
            d->meshCells->Modified();
        }
        d->meshPoints->Modified();
        d->meshNormals->Modified();
        d->meshColours->Modified();
        d->meshPoly->Modified();
    }

    if (!d->legendEntries.empty()) {
        detail::fillLegend(d->legend, d->legendEntries);
    }
    d->applySizes();
    setPropShown(d->fillActor, flat);
    setPropShown(d->outlineActor, flat);
    setPropShown(d->glyphActor, useGlyph);
    setPropShown(d->meshActor, useMesh);
    setPropShown(d->centreActor, n > 0);
    setPropShown(d->legend, n > 0 && d->legendVisible && !d->legendEntries.empty());
    requestRender();
}

void GaussianScene::setSigmaLevel(double k)
{
    WFM_CHECK(k > 0.0 && std::isfinite(k), "sigma level must be positive, got ", k);
    const double ratio = k / d->sigma;
    d->sigma = k;
    for (Shape& s : d->shapes) {
        for (double& r : s.radii) {
            r *= ratio;
        }
    }
    rebuild(false);
}

double GaussianScene::sigmaLevel() const
{
    return d->sigma;
}

void GaussianScene::setFillOpacity(double opacity)
{
    WFM_CHECK(opacity > 0.0 && opacity <= 1.0, "opacity must be in (0, 1], got ", opacity);
    d->fillOpacity = opacity;
    d->surfaceOpacity = opacity;
    d->fillActor->GetProperty()->SetOpacity(opacity);
    d->glyphActor->GetProperty()->SetOpacity(glyphOpacity(opacity));
    d->meshActor->GetProperty()->SetOpacity(opacity);
    requestRender();
}

double GaussianScene::fillOpacity() const
{
    return d->ellipsoids ? d->surfaceOpacity : d->fillOpacity;
}

void GaussianScene::setEllipsoidMethod(EllipsoidMethod method)
{
    if (method == d->method) {
        return;
    }
    d->method = method;
    rebuild(true);
}

GaussianScene::EllipsoidMethod GaussianScene::ellipsoidMethod() const
{
    return d->method;
}

void GaussianScene::setLegendVisible(bool visible)
{
    d->legendVisible = visible;
    setPropShown(d->legend, !d->shapes.empty() && visible && !d->legendEntries.empty());
    requestRender();
}

bool GaussianScene::isLegendVisible() const
{
    return d->legendVisible;
}

void GaussianScene::applyTheme(const QColor& foreground, const QColor& background)
{
    detail::styleLegend(d->legend, foreground, background);
    requestRender();
}

void GaussianScene::applyPixelScale(double scale)
{
    d->pixelScale = scale;
    d->applySizes();
}

} // namespace wfm
