#pragma once
// Helpers shared by the Qt Test suites: Python fixture scripts (numpy writes files our readers
// must open, and reads files we write) and exception-message checks.

#include <QFile>
#include <QProcess>
#include <QString>

#include <functional>
#include <string>
#include <vector>

namespace wfm::test {

/// Debian's interpreter, which has numpy/scipy/torch (scripts/setup installs them).
inline const QString kPython = QStringLiteral("/usr/bin/python3");

/// Saves `script` as dir/fileName, runs it with kPython in `dir` and returns its exit code
/// (-1 when it cannot be written, started or finished in time); stdout+stderr go to `log`.
inline int runPython(const QString& dir, const QString& script, QString& log,
    const QString& fileName = QStringLiteral("fixture.py"), int timeoutMs = 120'000)
{
    const QString path = dir + QLatin1Char('/') + fileName;
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate)) {
        log = QStringLiteral("cannot write ") + path;
        return -1;
    }
    f.write(script.toUtf8());
    f.close();
    QProcess p;
    p.setWorkingDirectory(dir);
    p.setProcessChannelMode(QProcess::MergedChannels);
    p.start(kPython, { path });
    if (!p.waitForFinished(timeoutMs)) {
        log = QStringLiteral("python did not finish: ") + p.errorString();
        p.kill();
        return -1;
    }
    log = QString::fromUtf8(p.readAll());
    return p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
}

/// Calls fn, which must throw E whose message contains every part; returns "" on success or a
/// description of what went wrong.
template <typename E>
std::string expectThrow(const std::function<void()>& fn, const std::vector<std::string>& parts)
{
    try {
        fn();
    } catch (const E& e) {
        const std::string msg = e.what();
        for (const auto& p : parts) {
            if (msg.find(p) == std::string::npos) {
                return "message '" + msg + "' lacks '" + p + "'";
            }
        }
        return {};
    } catch (const std::exception& e) {
        return std::string("wrong exception type: ") + e.what();
    }
    return "no exception";
}

} // namespace wfm::test

/// QVERIFY that `stmt` throws E with a message containing each of the given strings.
#define EXPECT_THROW_MSG(E, stmt, ...)                                                            \
    do {                                                                                          \
        const std::string problem_ = ::wfm::test::expectThrow<E>([&] { stmt; }, { __VA_ARGS__ }); \
        QVERIFY2(problem_.empty(), problem_.c_str());                                             \
    } while (false)
