#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace wfm {

/// Base of every exception the engine throws. Messages are one line and name the
/// file, field and problem where there is one.
class Error : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

/// A setting or argument is invalid (bad option value, wrong shape, bad weights).
class ConfigError : public Error
{
public:
    using Error::Error;
};

/// A data file or dataset specification cannot be read or is malformed.
class DatasetError : public Error
{
public:
    using Error::Error;
};

/// A checkpoint cannot be read or written.
class CheckpointError : public Error
{
public:
    using Error::Error;
};

namespace detail {

template <typename... Args>
std::string concat(Args&&... args)
{
    std::ostringstream os;
    (os << ... << std::forward<Args>(args));
    return os.str();
}

} // namespace detail
} // namespace wfm

/// Checks a condition at a public entry point; throws wfm::ConfigError with the
/// concatenated message when it fails.
/// `WFM_CHECK(x.dim() == 3, "points must be [B,N,D], got ", x.sizes());`
#define WFM_CHECK(cond, ...)                                                              \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            throw ::wfm::ConfigError(::wfm::detail::concat(__VA_ARGS__));                 \
        }                                                                                 \
    } while (false)

/// As WFM_CHECK but throws the given exception type.
#define WFM_CHECK_AS(Type, cond, ...)                                                     \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            throw Type(::wfm::detail::concat(__VA_ARGS__));                               \
        }                                                                                 \
    } while (false)
