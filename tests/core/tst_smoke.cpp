#include "wfm/Platform.h"
#include <QtTest>
#include <torch/torch.h>
class TestSmoke : public QObject { Q_OBJECT
private Q_SLOTS:
    void device() { QCOMPARE(wfm::parseDevice("cpu").is_cpu(), true); }
};
QTEST_GUILESS_MAIN(TestSmoke)
#include "tst_smoke.moc"
