#pragma once
// `wfm render`: pictures and videos of datasets, geodesics and generations, rendered offscreen.
// Torch-free; built only with the GUI (WFM_HAVE_RENDER).

#include <CLI/CLI.hpp>

#include <functional>

namespace wfm::cli {

/// Adds the `render` subcommand; the returned function runs it (exit code 0, 1 run failure,
/// 2 usage error). It creates its own QApplication.
std::function<int()> addRenderCommand(CLI::App& app);

} // namespace wfm::cli
