#pragma once

#include <string>

namespace wfm::flow {

/// ODE integrators for generation (DESIGN.md: midpoint with 100 steps is the reference default).
/// With step h = 1/T from t = 0 (noise) to t = 1 (data) and velocity v(x, t):
///  - Euler:    x <- x + h v(x, t)
///  - Midpoint: x <- x + h v(x + h/2 v(x, t), t + h/2)            (explicit RK2)
///  - Heun:     x <- x + h/2 (v(x, t) + v(x + h v(x, t), t + h))  (trapezoidal RK2)
enum class Integrator { Euler, Midpoint, Heun };

/// "euler", "midpoint", "heun".
std::string integratorName(Integrator integrator);
/// Inverse of integratorName() (also "rk2" for Midpoint). Throws ConfigError listing the names.
Integrator parseIntegrator(const std::string& name);
/// Velocity evaluations per step: 1 (Euler) or 2.
int evaluationsPerStep(Integrator integrator);

} // namespace wfm::flow
