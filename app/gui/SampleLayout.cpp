#include "SampleLayout.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace wfm {

namespace {

bool live(const CloudSnapshot& s, int k, int i)
{
    return s.weights[static_cast<size_t>(k) * s.maxPoints + i] > 0.0f;
}

float coord(const CloudSnapshot& s, int k, int i, int a)
{
    return a < s.dim ? s.cloud(k)[static_cast<size_t>(i) * s.dim + a] : 0.0f;
}

/// Largest distance along x or y of a live point of any cloud from the cloud's centre.
float largestHalfExtent(const CloudSnapshot& s, const std::vector<std::array<float, 2>>& centres)
{
    float h = 0.0f;
    for (int k = 0; k < s.count && k < static_cast<int>(centres.size()); ++k) {
        for (int i = 0; i < s.maxPoints; ++i) {
            if (live(s, k, i)) {
                for (int a = 0; a < 2; ++a) {
                    h = std::max(h, std::abs(coord(s, k, i, a) - centres[static_cast<size_t>(k)][a]));
                }
            }
        }
    }
    return h;
}

} // namespace

GridLayout gridFor(const CloudSnapshot& snapshot, const CloudSnapshot* alsoFits)
{
    GridLayout g;
    g.columns = std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(std::max(1, snapshot.count))))));
    g.centres.resize(static_cast<size_t>(snapshot.count), { 0.0f, 0.0f });
    for (int k = 0; k < snapshot.count; ++k) {
        for (int a = 0; a < 2; ++a) {
            float lo = std::numeric_limits<float>::max();
            float hi = std::numeric_limits<float>::lowest();
            for (int i = 0; i < snapshot.maxPoints; ++i) {
                if (live(snapshot, k, i)) {
                    lo = std::min(lo, coord(snapshot, k, i, a));
                    hi = std::max(hi, coord(snapshot, k, i, a));
                }
            }
            g.centres[static_cast<size_t>(k)][a] = hi >= lo ? 0.5f * (lo + hi) : 0.0f;
        }
    }
    float half = largestHalfExtent(snapshot, g.centres);
    // 3-D clouds seen obliquely also spread by their depth.
    if (snapshot.dim >= 3) {
        for (int k = 0; k < snapshot.count; ++k) {
            float lo = std::numeric_limits<float>::max();
            float hi = std::numeric_limits<float>::lowest();
            for (int i = 0; i < snapshot.maxPoints; ++i) {
                if (live(snapshot, k, i)) {
                    lo = std::min(lo, coord(snapshot, k, i, 2));
                    hi = std::max(hi, coord(snapshot, k, i, 2));
                }
            }
            if (hi >= lo) {
                half = std::max(half, 0.5f * (hi - lo));
            }
        }
    }
    if (alsoFits && alsoFits->count == snapshot.count) {
        half = std::max(half, largestHalfExtent(*alsoFits, g.centres));
    }
    g.cell = half > 0.0f ? 2.2f * half : 1.0f;
    return g;
}

CloudSnapshot selectCoordinates(const CloudSnapshot& snapshot, const std::array<int, 3>& axes)
{
    if (snapshot.dim <= 3) {
        return snapshot;
    }
    CloudSnapshot out = snapshot;
    out.dim = 3;
    const size_t n = static_cast<size_t>(snapshot.count) * static_cast<size_t>(snapshot.maxPoints);
    out.points.assign(n * 3, 0.0f);
    for (int a = 0; a < 3; ++a) {
        const int from = axes[static_cast<size_t>(a)] >= 0 && axes[static_cast<size_t>(a)] < snapshot.dim
            ? axes[static_cast<size_t>(a)]
            : a;
        for (size_t p = 0; p < n; ++p) {
            out.points[p * 3 + static_cast<size_t>(a)] = snapshot.points[p * static_cast<size_t>(snapshot.dim) + static_cast<size_t>(from)];
        }
    }
    return out;
}

CloudSnapshot arrangeInGrid(const CloudSnapshot& s, const GridLayout& grid)
{
    CloudSnapshot out = s;
    const int dim = std::max(2, s.dim);
    out.dim = dim;
    if (dim != s.dim) {
        out.points.assign(static_cast<size_t>(s.count) * s.maxPoints * dim, 0.0f);
        for (size_t i = 0; i < static_cast<size_t>(s.count) * s.maxPoints; ++i) {
            out.points[i * dim] = s.points[i];
        }
    }
    const int columns = std::max(1, grid.columns);
    for (int k = 0; k < s.count; ++k) {
        const std::array<float, 2> c = k < static_cast<int>(grid.centres.size())
            ? grid.centres[static_cast<size_t>(k)]
            : std::array<float, 2> { 0.0f, 0.0f };
        const float dx = static_cast<float>(k % columns) * grid.cell - c[0];
        const float dy = -static_cast<float>(k / columns) * grid.cell - c[1];
        float* p = out.points.data() + static_cast<size_t>(k) * s.maxPoints * dim;
        for (int i = 0; i < s.maxPoints; ++i) {
            if (live(s, k, i)) {
                p[static_cast<size_t>(i) * dim] += dx;
                p[static_cast<size_t>(i) * dim + 1] += dy;
            }
        }
    }
    return out;
}

} // namespace wfm
