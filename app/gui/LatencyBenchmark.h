#pragma once

#include <QJsonObject>
#include <QString>

namespace wfm::gui {

/// `wfm-studio --bench-latency`: opens the main window, loads `spec`, starts training on the CPU
/// with `configPath`'s settings (or the form's defaults when empty) and, for `seconds` of the
/// run, measures how late a 10 ms timer on the GUI thread fires (the event loop's latency while
/// the worker thread, its LibTorch threads, the live loss chart and the live samples all run).
/// Then stops the run and reports the lateness percentiles, the training steps done and the
/// worker's priority setting. Needs a display (Xvfb is fine).
QJsonObject runLatencyBenchmark(double seconds, const QString& spec, const QString& configPath);

} // namespace wfm::gui
