#pragma once

#include <array>

namespace wfm {

/// Eigen-decomposition A = V diag(values) V^T of a symmetric 3x3 matrix.
struct SymmetricEigen3
{
    /// Eigenvalues, largest first.
    std::array<double, 3> values {};
    /// Orthonormal eigenvectors as columns: vectors[row][col] is component `row` of the
    /// eigenvector of values[col]. det(V) = +1, so V is a rotation.
    std::array<std::array<double, 3>, 3> vectors {};
};

/// Decomposes the symmetric matrix `a` (row-major, 9 entries; only the upper triangle is
/// read) by cyclic Jacobi rotations, accurate to about machine precision relative to |A|.
SymmetricEigen3 symmetricEigen3(const std::array<double, 9>& a);

/// Unit quaternion (w, x, y, z) of the rotation matrix `r` (columns as in
/// SymmetricEigen3::vectors; must be a proper rotation).
std::array<double, 4> rotationToQuaternion(const std::array<std::array<double, 3>, 3>& r);

} // namespace wfm
