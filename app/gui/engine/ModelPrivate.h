#pragma once

// Torch side of wfm::gui::Model: only engine/*.cpp include this.

#include "engine/Engine.h"
#include "wfm/flow/GaussianGenerator.h"
#include "wfm/flow/Generate.h"

#include <memory>

namespace wfm::gui {

class Model
{
public:
    std::shared_ptr<flow::CloudGenerator> clouds;      ///< point-cloud runs
    std::shared_ptr<flow::GaussianGenerator> gaussians; ///< Gaussian runs
};

inline ModelPtr makeModel(std::shared_ptr<flow::CloudGenerator> c, std::shared_ptr<flow::GaussianGenerator> g)
{
    auto m = std::make_shared<Model>();
    m->clouds = std::move(c);
    m->gaussians = std::move(g);
    return m;
}

} // namespace wfm::gui
