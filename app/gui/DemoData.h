#pragma once

#include "wfm/Snapshot.h"

#include <cstdint>

namespace wfm::demo {

/// A family of 3-D shapes sampled uniformly on their surfaces/curves, one cloud per shape:
/// torus (label 0), sphere (1) and trefoil knot tube (2), side by side along x, each with
/// `pointsPerShape` points (all weights 1). Deterministic for a given seed.
CloudSnapshot shapeFamily(int pointsPerShape = 1500, std::uint32_t seed = 7);

/// A 2-D Gaussian mixture: `count` Gaussians with random means, orientations and aspect ratios,
/// labels cycling over three named classes.
GaussianSnapshot gaussians2D(int count = 12, std::uint32_t seed = 11);

/// `count` random 3-D Gaussians on a ring; `phase` (radians) rotates every covariance about the
/// z axis and moves the means along the ring, for animations. No labels.
GaussianSnapshot ellipsoids3D(int count = 60, double phase = 0.0, std::uint32_t seed = 13);

/// Two 2-D clouds of `points` points: cloud 0 a disc-like blob, cloud 1 its image under a smooth
/// non-linear map (a swirl plus a shift), point i of cloud 1 being the image of point i of
/// cloud 0. Labels "source" and "mapped".
CloudSnapshot correspondencePair(int points = 1200, std::uint32_t seed = 17);

} // namespace wfm::demo
