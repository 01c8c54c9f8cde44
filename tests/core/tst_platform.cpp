// Platform helpers: device parsing, thread set-up, the engine's parallel loop.

#include "wfm/Error.h"
#include "wfm/Parallel.h"
#include "wfm/Platform.h"

#include <QtTest>

#include <torch/torch.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

class TestPlatform : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void parseDevice()
    {
        QVERIFY(wfm::parseDevice("cpu").is_cpu());
        const auto autoDev = wfm::parseDevice("auto");
        QCOMPARE(autoDev.is_cuda(), wfm::cudaDeviceCount() > 0);
        QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, wfm::parseDevice("tpu"));
        QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, wfm::parseDevice("cuda:x"));
        QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, wfm::parseDevice("cuda:99"));
        if (wfm::cudaDeviceCount() == 0) {
            QVERIFY_THROWS_EXCEPTION(wfm::ConfigError, wfm::parseDevice("cuda"));
        }
        QVERIFY(wfm::deviceName(wfm::parseDevice("cpu")).rfind("CPU: ", 0) == 0);
    }

    void threads()
    {
        wfm::initThreads(3);
        QCOMPARE(at::get_num_threads(), 3);
        wfm::initThreads();
        QVERIFY(at::get_num_threads() >= 1);
    }

    // Every index is visited exactly once, in contiguous ranges, on several threads.
    void parallelForCoversRange()
    {
        for (int threads : { 1, 2, 5 }) {
            for (int64_t count : { int64_t(0), int64_t(1), int64_t(7), int64_t(1000) }) {
                std::vector<std::atomic<int>> hits(static_cast<size_t>(count));
                std::mutex m;
                std::set<std::thread::id> ids;
                wfm::parallelFor(count, [&](int64_t b, int64_t e) {
                    QVERIFY(b <= e);
                    {
                        std::lock_guard lock(m);
                        ids.insert(std::this_thread::get_id());
                    }
                    for (int64_t i = b; i < e; ++i) {
                        hits[static_cast<size_t>(i)]++;
                    }
                }, threads);
                for (auto& h : hits) {
                    QCOMPARE(h.load(), 1);
                }
                if (count >= threads) {
                    QCOMPARE(static_cast<int>(ids.size()), threads);
                }
            }
        }
    }

    void parallelForRethrows()
    {
        QVERIFY_THROWS_EXCEPTION(wfm::Error, wfm::parallelFor(10, [](int64_t b, int64_t) {
            if (b > 0) {
                throw wfm::Error("range failed");
            }
        }, 4));
    }
};

QTEST_GUILESS_MAIN(TestPlatform)
#include "tst_platform.moc"
