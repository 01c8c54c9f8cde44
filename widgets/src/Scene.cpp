#include "wfm/widgets/Scene.h"

#include "wfm/widgets/VtkViewport.h"

#include <vtkProp.h>
#include <vtkRenderer.h>
#include <vtkSmartPointer.h>

#include <algorithm>
#include <vector>

namespace wfm {

struct Scene::Props
{
    struct Entry
    {
        vtkSmartPointer<vtkProp> prop;
        bool shown = true;
    };
    std::vector<Entry> entries;
};

Scene::Scene()
    : m_props(std::make_unique<Props>())
{
}

Scene::~Scene()
{
    detach();
}

void Scene::attach(VtkViewport* viewport)
{
    if (viewport == m_viewport.data()) {
        return;
    }
    detach();
    if (!viewport) {
        return;
    }
    m_viewport = viewport;
    vtkRenderer* renderer = viewport->renderer();
    for (const auto& e : m_props->entries) {
        renderer->AddViewProp(e.prop);
    }
    viewport->registerScene(this);
    applyTheme(viewport->foregroundColour(), viewport->backgroundColour());
    applyPixelScale(viewport->pixelScale());
    viewport->requestRender();
}

void Scene::detach()
{
    VtkViewport* viewport = m_viewport.data();
    m_viewport.clear();
    if (!viewport) {
        return;
    }
    // Props release their GL resources when removed: the context must be current.
    viewport->makeVtkContextCurrent();
    vtkRenderer* renderer = viewport->renderer();
    for (const auto& e : m_props->entries) {
        renderer->RemoveViewProp(e.prop);
    }
    viewport->unregisterScene(this);
    viewport->requestRender();
}

VtkViewport* Scene::viewport() const
{
    return m_viewport.data();
}

void Scene::setVisible(bool visible)
{
    m_visible = visible;
    updateVisibility();
    requestRender();
}

bool Scene::isVisible() const
{
    return m_visible;
}

void Scene::registerProp(vtkProp* prop)
{
    m_props->entries.push_back({ prop, true });
    prop->SetVisibility(m_visible);
    if (m_viewport) {
        m_viewport->renderer()->AddViewProp(prop);
    }
}

void Scene::setPropShown(vtkProp* prop, bool shown)
{
    for (auto& e : m_props->entries) {
        if (e.prop == prop) {
            e.shown = shown;
            e.prop->SetVisibility(m_visible && shown);
        }
    }
}

void Scene::applyTheme(const QColor&, const QColor&) { }

void Scene::applyPixelScale(double) { }

double Scene::rightOverlayFraction() const
{
    return 0.0;
}

void Scene::requestRender()
{
    if (m_viewport) {
        m_viewport->requestRender();
    }
}

void Scene::updateVisibility()
{
    for (auto& e : m_props->entries) {
        e.prop->SetVisibility(m_visible && e.shown);
    }
}

void Scene::forgetViewport()
{
    m_viewport.clear();
}

} // namespace wfm
