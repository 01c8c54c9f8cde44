#include "wfm/widgets/SymmetricEigen3.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace wfm {

SymmetricEigen3 symmetricEigen3(const std::array<double, 9>& a)
{
    // Work on a full symmetric copy built from the upper triangle.
    double m[3][3] = {
        { a[0], a[1], a[2] },
        { a[1], a[4], a[5] },
        { a[2], a[5], a[8] },
    };
    double v[3][3] = { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } };

    double scale = 0.0;
    for (const auto& row : m) {
        for (double x : row) {
            scale = std::max(scale, std::abs(x));
        }
    }
    const double tiny = scale * 1e-300 + 1e-300;

    // Cyclic Jacobi: each rotation zeroes one off-diagonal pair; converges quadratically,
    // a 3x3 matrix needs at most a handful of sweeps.
    for (int sweep = 0; sweep < 50; ++sweep) {
        const double off = std::abs(m[0][1]) + std::abs(m[0][2]) + std::abs(m[1][2]);
        if (off <= 1e-17 * scale || off < tiny) {
            break;
        }
        for (int p = 0; p < 2; ++p) {
            for (int q = p + 1; q < 3; ++q) {
                const double apq = m[p][q];
                if (std::abs(apq) < tiny) {
                    continue;
                }
                const double theta = (m[q][q] - m[p][p]) / (2.0 * apq);
                const double t = (theta >= 0.0 ? 1.0 : -1.0)
                    / (std::abs(theta) + std::sqrt(theta * theta + 1.0));
                const double c = 1.0 / std::sqrt(t * t + 1.0);
                const double s = t * c;
                // m <- J^T m J with J the rotation in the (p, q) plane.
                for (int k = 0; k < 3; ++k) {
                    const double mkp = m[k][p];
                    const double mkq = m[k][q];
                    m[k][p] = c * mkp - s * mkq;
                    m[k][q] = s * mkp + c * mkq;
                }
                for (int k = 0; k < 3; ++k) {
                    const double mpk = m[p][k];
                    const double mqk = m[q][k];
                    m[p][k] = c * mpk - s * mqk;
                    m[q][k] = s * mpk + c * mqk;
                }
                for (int k = 0; k < 3; ++k) {
                    const double vkp = v[k][p];
                    const double vkq = v[k][q];
                    v[k][p] = c * vkp - s * vkq;
                    v[k][q] = s * vkp + c * vkq;
                }
            }
        }
    }

    // Sort eigenpairs by decreasing eigenvalue.
    std::array<int, 3> order = { 0, 1, 2 };
    std::sort(order.begin(), order.end(), [&](int i, int j) { return m[i][i] > m[j][j]; });
    SymmetricEigen3 result;
    for (int c = 0; c < 3; ++c) {
        result.values[c] = m[order[c]][order[c]];
        for (int r = 0; r < 3; ++r) {
            result.vectors[r][c] = v[r][order[c]];
        }
    }
    // Make V a proper rotation (det +1) by flipping the last eigenvector if needed.
    const auto& e = result.vectors;
    const double det = e[0][0] * (e[1][1] * e[2][2] - e[1][2] * e[2][1])
        - e[0][1] * (e[1][0] * e[2][2] - e[1][2] * e[2][0])
        + e[0][2] * (e[1][0] * e[2][1] - e[1][1] * e[2][0]);
    if (det < 0.0) {
        for (int r = 0; r < 3; ++r) {
            result.vectors[r][2] = -result.vectors[r][2];
        }
    }
    return result;
}

std::array<double, 4> rotationToQuaternion(const std::array<std::array<double, 3>, 3>& r)
{
    // Shepperd's method: pick the largest of the four candidates for numerical stability.
    const double trace = r[0][0] + r[1][1] + r[2][2];
    std::array<double, 4> q {};
    if (trace > r[0][0] && trace > r[1][1] && trace > r[2][2]) {
        const double s = 2.0 * std::sqrt(1.0 + trace);
        q = { 0.25 * s, (r[2][1] - r[1][2]) / s, (r[0][2] - r[2][0]) / s, (r[1][0] - r[0][1]) / s };
    } else if (r[0][0] >= r[1][1] && r[0][0] >= r[2][2]) {
        const double s = 2.0 * std::sqrt(1.0 + r[0][0] - r[1][1] - r[2][2]);
        q = { (r[2][1] - r[1][2]) / s, 0.25 * s, (r[0][1] + r[1][0]) / s, (r[0][2] + r[2][0]) / s };
    } else if (r[1][1] >= r[2][2]) {
        const double s = 2.0 * std::sqrt(1.0 + r[1][1] - r[0][0] - r[2][2]);
        q = { (r[0][2] - r[2][0]) / s, (r[0][1] + r[1][0]) / s, 0.25 * s, (r[1][2] + r[2][1]) / s };
    } else {
        const double s = 2.0 * std::sqrt(1.0 + r[2][2] - r[0][0] - r[1][1]);
        q = { (r[1][0] - r[0][1]) / s, (r[0][2] + r[2][0]) / s, (r[1][2] + r[2][1]) / s, 0.25 * s };
    }
    const double norm = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    for (double& x : q) {
        x /= norm;
    }
    return q;
}

} // namespace wfm
