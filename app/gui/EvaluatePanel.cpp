#include "EvaluatePanel.h"

#include "GeneratePanel.h"
#include "wfm/widgets/GalleryView.h"

#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

namespace wfm::gui {

EvaluatePanel::EvaluatePanel(GeneratePanel* generate, QWidget* parent)
    : QWidget(parent)
    , m_generate(generate)
{
    qRegisterMetaType<wfm::gui::Evaluation>();
    auto* layout = new QVBoxLayout(this);
    auto* form = new QFormLayout;
    m_count = new QSpinBox(this);
    m_count->setObjectName(QStringLiteral("evaluateCount"));
    m_count->setRange(2, 2000);
    m_count->setValue(64);
    m_count->setToolTip(tr("Held-out distributions compared (the first ones of the run's test split); as many "
                           "samples are generated"));
    form->addRow(tr("Reference size"), m_count);
    m_points = new QSpinBox(this);
    m_points->setRange(8, 4096);
    m_points->setValue(128);
    m_points->setToolTip(tr("Points per cloud for Chamfer (EMD uses half as many); a seeded random subset"));
    form->addRow(tr("Points (CD)"), m_points);
    layout->addLayout(form);
    m_run = new QPushButton(tr("Evaluate"), this);
    m_run->setObjectName(QStringLiteral("evaluate"));
    m_run->setToolTip(tr("Generate and compare with the held-out split of the model's run (background task)"));
    layout->addWidget(m_run);
    m_reference = new QLabel(tr("Load or train a model on the Generate tab first."), this);
    m_reference->setWordWrap(true);
    layout->addWidget(m_reference);

    m_table = new QTableWidget(0, 4, this);
    m_table->setObjectName(QStringLiteral("metricsTable"));
    m_table->setHorizontalHeaderLabels({ tr("Distance"), tr("1-NNA"), tr("COV"), tr("MMD") });
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
    m_table->verticalHeader()->setVisible(false);
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setToolTip(tr("1-NNA: 50 % is ideal; COV: higher is better; MMD: lower is better (Chamfer: squared "
                           "length, EMD: W2², Bures-Wasserstein: length)"));
    m_table->setMaximumHeight(130);
    layout->addWidget(m_table);

    auto* sides = new QHBoxLayout;
    auto* realBox = new QVBoxLayout;
    realBox->addWidget(new QLabel(tr("Real (held-out)"), this));
    m_real = new wfm::GalleryView(this);
    m_real->setObjectName(QStringLiteral("realGallery"));
    m_real->setThumbnailSize(QSize(72, 72));
    realBox->addWidget(m_real);
    auto* genBox = new QVBoxLayout;
    genBox->addWidget(new QLabel(tr("Generated"), this));
    m_generated = new wfm::GalleryView(this);
    m_generated->setObjectName(QStringLiteral("evaluatedGallery"));
    m_generated->setThumbnailSize(QSize(72, 72));
    genBox->addWidget(m_generated);
    sides->addLayout(realBox);
    sides->addLayout(genBox);
    layout->addLayout(sides, 1);

    connect(m_run, &QPushButton::clicked, this, [this] { evaluate(); });
    connect(&m_watcher, &QFutureWatcher<Evaluation>::finished, this, &EvaluatePanel::finished);
    connect(m_generate, &GeneratePanel::samplesReady, this, [this] { updateControls(); });
    updateControls();
}

EvaluatePanel::~EvaluatePanel()
{
    m_watcher.waitForFinished();
}

void EvaluatePanel::setMaxReference(int count)
{
    m_count->setValue(count);
}

bool EvaluatePanel::isEvaluating() const
{
    return m_watcher.isRunning();
}

bool EvaluatePanel::evaluate()
{
    const ModelPtr model = m_generate->model();
    if (!model || m_watcher.isRunning()) {
        return false;
    }
    EvaluateOptions o;
    o.maxReference = m_count->value();
    o.chamferPoints = m_points->value();
    o.emdPoints = std::max(8, m_points->value() / 2);
    m_run->setEnabled(false);
    m_reference->setText(tr("Evaluating…"));
    Q_EMIT statusMessage(tr("Evaluating against %1 held-out distributions…").arg(o.maxReference));
    m_watcher.setFuture(QtConcurrent::run([model, o] {
        try {
            return wfm::gui::evaluate(*model, o);
        } catch (const std::exception& e) {
            Evaluation failed;
            failed.error = errorMessage(e);
            return failed;
        }
    }));
    return true;
}

void EvaluatePanel::finished()
{
    Evaluation result = m_watcher.result();
    updateControls();
    if (!result.error.isEmpty()) {
        m_reference->setText(tr("Evaluation failed: %1").arg(result.error));
        Q_EMIT errorOccurred(tr("Evaluate"), result.error);
        return;
    }
    m_result = std::move(result);
    const Evaluation& r = m_result;
    m_table->setRowCount(0);
    auto addRow = [this](const QString& name, const QStringList& values) {
        const int row = m_table->rowCount();
        m_table->insertRow(row);
        m_table->setItem(row, 0, new QTableWidgetItem(name));
        for (int c = 0; c < values.size(); ++c) {
            auto* item = new QTableWidgetItem(values[c]);
            item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            m_table->setItem(row, c + 1, item);
        }
    };
    for (const MetricRow& m : r.rows) {
        const QString name = m.distance == QLatin1String("chamfer") ? tr("Chamfer (CD)")
            : m.distance == QLatin1String("emd")                     ? tr("EMD")
            : m.distance == QLatin1String("bures_wasserstein")       ? tr("Bures-Wasserstein")
                                                                     : m.distance;
        addRow(m.label.isEmpty() ? name : QStringLiteral("%1 · %2").arg(name, m.label), { QStringLiteral("%1 %").arg(100.0 * m.nna, 0, 'f', 1), QStringLiteral("%1 %").arg(100.0 * m.cov, 0, 'f', 1),
                         QString::number(m.mmd, 'g', 4) });
    }
    if (r.hasNiche) {
        addRow(tr("Niche label accuracy"),
            { tr("real %1 %").arg(100.0 * r.nicheReal, 0, 'f', 1), tr("generated %1 %").arg(100.0 * r.nicheGenerated, 0, 'f', 1),
                tr("chance %1 %").arg(100.0 * r.nicheChance, 0, 'f', 1) });
    }
    m_reference->setText(tr("Reference: %1; %2 s").arg(r.reference).arg(r.seconds, 0, 'f', 1));
    if (r.gaussian) {
        m_real->setGaussians(r.realGaussians);
        m_generated->setGaussians(r.generatedGaussians);
    } else {
        m_real->setClouds(r.realClouds);
        m_generated->setClouds(r.generatedClouds);
    }
    Q_EMIT statusMessage(tr("Evaluated in %1 s").arg(r.seconds, 0, 'f', 1));
    Q_EMIT evaluated(m_result);
}

void EvaluatePanel::showEvent(QShowEvent* event)
{
    QWidget::showEvent(event);
    updateControls(); // the model may have changed on the Generate tab
}

void EvaluatePanel::updateControls()
{
    m_run->setEnabled(m_generate->model() && !m_watcher.isRunning());
    if (m_generate->model() && m_result.rows.isEmpty() && !m_watcher.isRunning()) {
        m_reference->setText(tr("Press Evaluate to compare the model with its run's held-out data."));
    }
}

} // namespace wfm::gui
