#include "wfm/flow/Integrator.h"

#include "wfm/Error.h"

namespace wfm::flow {

std::string integratorName(Integrator integrator)
{
    switch (integrator) {
    case Integrator::Euler:
        return "euler";
    case Integrator::Midpoint:
        return "midpoint";
    case Integrator::Heun:
        return "heun";
    }
    return "euler";
}

Integrator parseIntegrator(const std::string& name)
{
    if (name == "euler") {
        return Integrator::Euler;
    }
    if (name == "midpoint" || name == "rk2") {
        return Integrator::Midpoint;
    }
    if (name == "heun") {
        return Integrator::Heun;
    }
    throw ConfigError("unknown integrator '" + name + "' (valid: euler, midpoint, heun)");
}

int evaluationsPerStep(Integrator integrator)
{
    return integrator == Integrator::Euler ? 1 : 2;
}

} // namespace wfm::flow
