#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace wfm {

/// Plain CPU copy of a batch of weighted point clouds, for views and exports. Torch-free, so
/// widgets can include it. `points` is row-major [count, maxPoints, dim]; `weights` is
/// [count, maxPoints] (0 marks padding); `labels` has one entry per cloud or is empty.
struct CloudSnapshot
{
    int count = 0;
    int maxPoints = 0;
    int dim = 0;
    std::vector<float> points;
    std::vector<float> weights;
    std::vector<std::int64_t> labels;
    std::vector<std::string> labelNames;

    /// Number of live (non-zero weight) points of cloud k.
    int liveCount(int k) const
    {
        int n = 0;
        for (int i = 0; i < maxPoints; ++i) {
            n += weights[static_cast<size_t>(k) * maxPoints + i] > 0.0f ? 1 : 0;
        }
        return n;
    }
    const float* cloud(int k) const { return points.data() + static_cast<size_t>(k) * maxPoints * dim; }
};

/// Plain CPU copy of a batch of Gaussians: means [count, dim], covariances [count, dim, dim].
struct GaussianSnapshot
{
    int count = 0;
    int dim = 0;
    std::vector<float> means;
    std::vector<float> covariances;
    std::vector<std::int64_t> labels;
    std::vector<std::string> labelNames;
};

} // namespace wfm
