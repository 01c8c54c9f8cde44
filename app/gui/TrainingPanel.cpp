#include "TrainingPanel.h"

#include "ConfigDialog.h"
#include "TrainingController.h"

#include <QChart>
#include <QChartView>
#include <QComboBox>
#include <QDateTime>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QKeySequence>
#include <QLabel>
#include <QLineEdit>
#include <QLineSeries>
#include <QLogValueAxis>
#include <QPainter>
#include <QPen>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QStandardPaths>
#include <QVBoxLayout>
#include <QValueAxis>

#include <algorithm>
#include <cmath>

namespace wfm::gui {

namespace {

QString formatDuration(double s)
{
    if (!std::isfinite(s) || s < 0) {
        return QStringLiteral("?");
    }
    const qint64 t = static_cast<qint64>(s + 0.5);
    if (t >= 3600) {
        return QStringLiteral("%1h%2m").arg(t / 3600).arg((t / 60) % 60, 2, 10, QLatin1Char('0'));
    }
    if (t >= 60) {
        return QStringLiteral("%1m%2s").arg(t / 60).arg(t % 60, 2, 10, QLatin1Char('0'));
    }
    return QStringLiteral("%1s").arg(t);
}

QSpinBox* spin(QWidget* parent, const char* name, int lo, int hi, const QString& tip)
{
    auto* s = new QSpinBox(parent);
    s->setObjectName(QLatin1String(name));
    s->setRange(lo, hi);
    s->setToolTip(tip);
    return s;
}

QComboBox* combo(QWidget* parent, const char* name, const QStringList& items, const QString& tip)
{
    auto* c = new QComboBox(parent);
    c->setObjectName(QLatin1String(name));
    c->addItems(items);
    c->setToolTip(tip);
    return c;
}

void selectData(QComboBox* c, const QString& value)
{
    int i = c->findData(value);
    if (i < 0) {
        i = c->findText(value);
    }
    if (i < 0) {
        c->addItem(value, value);
        i = c->count() - 1;
    }
    c->setCurrentIndex(i);
}

QString comboValue(const QComboBox* c)
{
    const QVariant v = c->currentData();
    return v.isValid() ? v.toString() : c->currentText();
}

} // namespace

TrainingPanel::TrainingPanel(QWidget* parent)
    : QWidget(parent)
    , m_controller(new TrainingController(this))
{
    auto* layout = new QVBoxLayout(this);

    auto* presetRow = new QHBoxLayout;
    m_preset = new QComboBox(this);
    m_preset->setObjectName(QStringLiteral("preset"));
    m_preset->addItem(tr("Defaults"), QString());
    const QDir presets(QStringLiteral(":/configs"));
    for (const QString& f : presets.entryList({ QStringLiteral("*.json") }, QDir::Files, QDir::Name)) {
        m_preset->addItem(QFileInfo(f).completeBaseName(), presets.filePath(f));
    }
    m_preset->setToolTip(tr("Presets from resources/configs"));
    auto* loadConfig = new QPushButton(tr("Load config…"), this);
    auto* allSettings = new QPushButton(tr("All settings…"), this);
    allSettings->setObjectName(QStringLiteral("allSettings"));
    allSettings->setToolTip(tr("Every engine setting of the run (OT, optimiser, schedule, EMA, noise, precision, "
                               "generation…) in an editable tree, checked by the engine"));
    connect(allSettings, &QPushButton::clicked, this, &TrainingPanel::editAllSettings);
    m_resumeRun = new QPushButton(tr("Resume run…"), this);
    m_resumeRun->setToolTip(tr("Continue a run from its folder's checkpoint"));
    presetRow->addWidget(new QLabel(tr("Preset:"), this));
    presetRow->addWidget(m_preset, 1);
    presetRow->addWidget(loadConfig);
    presetRow->addWidget(allSettings);
    presetRow->addWidget(m_resumeRun);
    layout->addLayout(presetRow);

    auto* form = new QFormLayout;
    form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    m_spec = new QLineEdit(this);
    m_spec->setObjectName(QStringLiteral("trainSpec"));
    m_spec->setToolTip(tr("Data SPEC to train on (set by the Data panel; editable)"));
    form->addRow(tr("Data"), m_spec);
    m_kind = combo(this, "kind", { QStringLiteral("auto"), QStringLiteral("clouds"), QStringLiteral("gaussians") },
        tr("Model kind: auto decides from the data"));
    form->addRow(tr("Kind"), m_kind);
    m_steps = spin(this, "steps", 1, 10'000'000, tr("Total optimiser steps"));
    m_batch = spin(this, "batch", 1, 65536, tr("Distributions per step"));
    m_lr = new QDoubleSpinBox(this);
    m_lr->setObjectName(QStringLiteral("lr"));
    m_lr->setDecimals(6);
    m_lr->setRange(1e-6, 1.0);
    m_lr->setSingleStep(1e-4);
    m_lr->setToolTip(tr("Peak learning rate (Adam)"));
    auto* stepsRow = new QHBoxLayout;
    stepsRow->addWidget(m_steps);
    stepsRow->addWidget(new QLabel(tr("batch"), this));
    stepsRow->addWidget(m_batch);
    stepsRow->addWidget(new QLabel(tr("lr"), this));
    stepsRow->addWidget(m_lr);
    form->addRow(tr("Steps"), stepsRow);
    m_width = spin(this, "width", 1, 8192, tr("Embedding width (a multiple of the heads)"));
    m_blocks = spin(this, "blocks", 1, 64, tr("Transformer blocks (residual blocks for Gaussians)"));
    m_heads = spin(this, "heads", 1, 64, tr("Attention heads"));
    auto* modelRow = new QHBoxLayout;
    modelRow->addWidget(m_width);
    modelRow->addWidget(new QLabel(tr("blocks"), this));
    modelRow->addWidget(m_blocks);
    modelRow->addWidget(new QLabel(tr("heads"), this));
    modelRow->addWidget(m_heads);
    form->addRow(tr("Width"), modelRow);
    m_minibatch = combo(this, "minibatch", minibatchCostNames(), tr("Cost of the minibatch OT pairing of sources and targets"));
    m_map = combo(this, "map", mapKindNames(), tr("How each inner OT plan becomes a map"));
    auto* otRow = new QHBoxLayout;
    otRow->addWidget(m_minibatch);
    otRow->addWidget(new QLabel(tr("map"), this));
    otRow->addWidget(m_map);
    form->addRow(tr("Minibatch OT"), otRow);
    m_device = new QComboBox(this);
    m_device->setObjectName(QStringLiteral("device"));
    for (const DeviceChoice& c : deviceChoices()) {
        m_device->addItem(c.name, c.id);
    }
    m_device->setToolTip(tr("Where the model trains"));
    form->addRow(tr("Device"), m_device);
    m_logEvery = spin(this, "logEvery", 1, 1'000'000, tr("Steps between loss reports"));
    m_sampleEvery = spin(this, "sampleEvery", 0, 1'000'000, tr("Steps between live samples (0 = none)"));
    m_checkpointEvery = spin(this, "checkpointEvery", 0, 10'000'000, tr("Steps between checkpoints"));
    auto* everyRow = new QHBoxLayout;
    everyRow->addWidget(m_logEvery);
    everyRow->addWidget(new QLabel(tr("samples"), this));
    everyRow->addWidget(m_sampleEvery);
    everyRow->addWidget(new QLabel(tr("ckpt"), this));
    everyRow->addWidget(m_checkpointEvery);
    form->addRow(tr("Log every"), everyRow);
    m_seed = spin(this, "seed", 0, 1'000'000'000, tr("Random seed"));
    form->addRow(tr("Seed"), m_seed);
    auto* runRow = new QHBoxLayout;
    m_runDir = new QLineEdit(this);
    m_runDir->setObjectName(QStringLiteral("runDir"));
    m_runDir->setPlaceholderText(tr("(a new folder under %1)")
                                     .arg(QStandardPaths::writableLocation(QStandardPaths::AppLocalDataLocation)));
    auto* browse = new QPushButton(tr("…"), this);
    runRow->addWidget(m_runDir, 1);
    runRow->addWidget(browse);
    form->addRow(tr("Run folder"), runRow);
    layout->addLayout(form);

    auto* buttons = new QHBoxLayout;
    m_start = new QPushButton(tr("Start"), this);
    m_start->setObjectName(QStringLiteral("startTraining"));
    m_start->setShortcut(QKeySequence(tr("Ctrl+T")));
    m_pause = new QPushButton(tr("Pause"), this);
    m_pause->setObjectName(QStringLiteral("pauseTraining"));
    m_stop = new QPushButton(tr("Stop"), this);
    m_stop->setObjectName(QStringLiteral("stopTraining"));
    buttons->addWidget(m_start);
    buttons->addWidget(m_pause);
    buttons->addWidget(m_stop);
    layout->addLayout(buttons);

    m_progress = new QProgressBar(this);
    m_progress->setRange(0, 1);
    m_progress->setValue(0);
    layout->addWidget(m_progress);
    m_stats = new QLabel(tr("Not training"), this);
    m_stats->setObjectName(QStringLiteral("trainStats"));
    m_stats->setWordWrap(true);
    layout->addWidget(m_stats);

    auto* chart = new QChart;
    chart->setTitle(tr("Loss"));
    chart->legend()->setAlignment(Qt::AlignBottom);
    chart->setMargins(QMargins(2, 2, 2, 2));
    m_loss = new QLineSeries;
    m_loss->setName(tr("loss"));
    m_smoothed = new QLineSeries;
    m_smoothed->setName(tr("smoothed"));
    chart->addSeries(m_loss);
    chart->addSeries(m_smoothed);
    QPen rawPen(QColor(120, 160, 220));
    rawPen.setWidthF(1.0);
    m_loss->setPen(rawPen);
    QPen smoothPen(QColor(230, 110, 40));
    smoothPen.setWidthF(2.0);
    m_smoothed->setPen(smoothPen);
    m_axisX = new QValueAxis;
    m_axisX->setTitleText(tr("step"));
    m_axisX->setLabelFormat(QStringLiteral("%d"));
    m_axisY = new QLogValueAxis;
    m_axisY->setBase(10.0);
    m_axisY->setLabelFormat(QStringLiteral("%.2g"));
    m_axisY->setMinorTickCount(-1);
    chart->addAxis(m_axisX, Qt::AlignBottom);
    chart->addAxis(m_axisY, Qt::AlignLeft);
    for (QLineSeries* s : { m_loss, m_smoothed }) {
        s->attachAxis(m_axisX);
        s->attachAxis(m_axisY);
    }
    m_chartView = new QChartView(chart, this);
    m_chartView->setObjectName(QStringLiteral("lossChart"));
    m_chartView->setRenderHint(QPainter::Antialiasing);
    m_chartView->setMinimumHeight(200);
    layout->addWidget(m_chartView, 1);
    clearChart();

    setForm(defaultTrainForm());

    connect(m_preset, &QComboBox::activated, this, &TrainingPanel::loadPreset);
    connect(loadConfig, &QPushButton::clicked, this, &TrainingPanel::loadConfigFile);
    connect(browse, &QPushButton::clicked, this, &TrainingPanel::chooseRunDir);
    connect(m_resumeRun, &QPushButton::clicked, this, &TrainingPanel::chooseResumeRun);
    connect(m_start, &QPushButton::clicked, this, &TrainingPanel::startTraining);
    connect(m_pause, &QPushButton::clicked, this, &TrainingPanel::togglePause);
    connect(m_stop, &QPushButton::clicked, this, &TrainingPanel::stopTraining);
    connect(m_controller, &TrainingController::runStarted, this, &TrainingPanel::onRunStarted);
    connect(m_controller, &TrainingController::progressChanged, this, &TrainingPanel::onProgress);
    connect(m_controller, &TrainingController::runFinished, this,
        [this](const RunOutcome& o, const ModelPtr&) { onFinished(o); });
    connect(m_controller, &TrainingController::trainingFailed, this, &TrainingPanel::onFailed);
    connect(m_controller, &TrainingController::runningChanged, this, &TrainingPanel::updateButtons);
    connect(m_controller, &TrainingController::pausedChanged, this, &TrainingPanel::updateButtons);
    updateButtons();
}

TrainingPanel::~TrainingPanel() = default;

void TrainingPanel::setDataSpec(const QString& spec, bool gaussian)
{
    m_spec->setText(spec);
    // A Gaussian dataset trains the Gaussian model; the minibatch cost follows.
    if (gaussian && comboValue(m_kind) == QLatin1String("clouds")) {
        selectData(m_kind, QStringLiteral("auto"));
    }
}

TrainForm TrainingPanel::form() const
{
    TrainForm f;
    f.baseJson = m_baseJson;
    f.spec = m_spec->text().trimmed();
    f.kind = comboValue(m_kind);
    f.steps = m_steps->value();
    f.batch = m_batch->value();
    f.lr = m_lr->value();
    f.width = m_width->value();
    f.blocks = m_blocks->value();
    f.heads = m_heads->value();
    f.minibatch = comboValue(m_minibatch);
    f.map = comboValue(m_map);
    f.device = comboValue(m_device);
    f.logEvery = m_logEvery->value();
    f.sampleEvery = m_sampleEvery->value();
    f.checkpointEvery = m_checkpointEvery->value();
    f.seed = static_cast<quint64>(m_seed->value());
    return f;
}

void TrainingPanel::setForm(const TrainForm& f)
{
    m_baseJson = f.baseJson;
    if (!f.spec.isEmpty()) {
        m_spec->setText(f.spec);
    }
    selectData(m_kind, f.kind);
    m_steps->setValue(static_cast<int>(std::min<qint64>(f.steps, m_steps->maximum())));
    m_batch->setValue(f.batch);
    m_lr->setValue(f.lr);
    m_width->setValue(f.width);
    m_blocks->setValue(f.blocks);
    m_heads->setValue(f.heads);
    selectData(m_minibatch, f.minibatch);
    selectData(m_map, f.map);
    selectData(m_device, f.device);
    m_logEvery->setValue(static_cast<int>(f.logEvery));
    m_sampleEvery->setValue(static_cast<int>(f.sampleEvery));
    m_checkpointEvery->setValue(static_cast<int>(f.checkpointEvery));
    m_seed->setValue(static_cast<int>(f.seed));
}

void TrainingPanel::setRunDir(const QString& dir)
{
    m_runDir->setText(dir);
}

QString TrainingPanel::runDir() const
{
    return m_runDir->text().trimmed();
}

void TrainingPanel::loadPreset(int index)
{
    const QString path = m_preset->itemData(index).toString();
    try {
        TrainForm f = path.isEmpty() ? defaultTrainForm() : trainFormFromFile(path);
        setForm(f);
        Q_EMIT statusMessage(tr("Preset %1 (data %2)").arg(m_preset->itemText(index), f.spec));
    } catch (const std::exception& e) {
        Q_EMIT errorOccurred(tr("Preset"), errorMessage(e));
    }
}

void TrainingPanel::loadConfigFile()
{
    QSettings settings;
    const QString path = QFileDialog::getOpenFileName(this, tr("Load training config"),
        settings.value(QStringLiteral("train/configDir"), QDir::homePath()).toString(), tr("JSON (*.json)"));
    if (path.isEmpty()) {
        return;
    }
    settings.setValue(QStringLiteral("train/configDir"), QFileInfo(path).absolutePath());
    try {
        setForm(trainFormFromFile(path));
        Q_EMIT statusMessage(tr("Loaded %1").arg(QDir::toNativeSeparators(path)));
    } catch (const std::exception& e) {
        Q_EMIT errorOccurred(tr("Load config"), errorMessage(e));
    }
}

QString TrainingPanel::validateConfigJson(const QString& json)
{
    try {
        (void)configJsonFromForm(trainFormFromJson(json, tr("All settings")));
        return {};
    } catch (const std::exception& e) {
        return errorMessage(e);
    }
}

QString TrainingPanel::applyConfigJson(const QString& json)
{
    const QString error = validateConfigJson(json);
    if (!error.isEmpty()) {
        return error;
    }
    setForm(trainFormFromJson(json, tr("All settings")));
    return {};
}

void TrainingPanel::editAllSettings()
{
    QString json;
    try {
        json = configJsonFromForm(form());
    } catch (const std::exception& e) {
        Q_EMIT errorOccurred(tr("All settings"), errorMessage(e));
        return;
    }
    ConfigDialog dialog(json, defaultConfigJson(), &TrainingPanel::validateConfigJson, this);
    if (dialog.exec() != QDialog::Accepted) {
        return;
    }
    const QString error = applyConfigJson(dialog.json());
    if (!error.isEmpty()) {
        Q_EMIT errorOccurred(tr("All settings"), error);
        return;
    }
    Q_EMIT statusMessage(tr("Training settings updated"));
}

void TrainingPanel::chooseRunDir()
{
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Run folder"),
        m_runDir->text().isEmpty() ? QDir::homePath() : m_runDir->text());
    if (!dir.isEmpty()) {
        m_runDir->setText(dir);
    }
}

void TrainingPanel::chooseResumeRun()
{
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Resume run"),
        QSettings().value(QStringLiteral("train/lastRun"), QDir::homePath()).toString());
    if (!dir.isEmpty()) {
        resumeRun(dir);
    }
}

bool TrainingPanel::startTraining()
{
    if (m_controller->isRunning()) {
        return false;
    }
    QString json;
    try {
        json = configJsonFromForm(form());
    } catch (const std::exception& e) {
        Q_EMIT errorOccurred(tr("Training settings"), errorMessage(e));
        return false;
    }
    QString dir = runDir();
    if (dir.isEmpty()) {
        dir = QDir(QStandardPaths::writableLocation(QStandardPaths::AppLocalDataLocation))
                  .filePath(QStringLiteral("runs/run-%1")
                                .arg(QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-HHmmss"))));
    }
    m_lastRunDir = dir;
    QSettings().setValue(QStringLiteral("train/lastRun"), dir);
    clearChart();
    m_stats->setText(tr("Preparing data and model…"));
    m_progress->setRange(0, 0);
    m_controller->start(json, dir);
    Q_EMIT statusMessage(tr("Training into %1").arg(QDir::toNativeSeparators(dir)));
    return true;
}

bool TrainingPanel::resumeRun(const QString& dir)
{
    if (m_controller->isRunning()) {
        return false;
    }
    try {
        runConfigJson(dir); // says early (and clearly) when there is no checkpoint there
    } catch (const std::exception& e) {
        Q_EMIT errorOccurred(tr("Resume run"), errorMessage(e));
        return false;
    }
    const qint64 steps = 0; // the stored step count
    m_lastRunDir = dir;
    clearChart();
    m_stats->setText(tr("Reopening %1…").arg(QDir::toNativeSeparators(dir)));
    m_progress->setRange(0, 0);
    m_controller->resume(dir, steps, comboValue(m_device) == QLatin1String("auto") ? QString() : comboValue(m_device));
    return true;
}

void TrainingPanel::togglePause()
{
    if (!m_controller->isRunning()) {
        return;
    }
    if (m_controller->isPaused()) {
        m_controller->resumeTraining();
        Q_EMIT statusMessage(tr("Training resumed"));
    } else {
        m_controller->pause();
        Q_EMIT statusMessage(tr("Pausing…"));
    }
}

void TrainingPanel::stopTraining()
{
    if (m_controller->isRunning()) {
        m_controller->requestStop();
        m_stop->setEnabled(false);
        Q_EMIT statusMessage(tr("Stopping (the checkpoint is kept)…"));
    }
}

int TrainingPanel::lossPointCount() const
{
    return static_cast<int>(m_loss->count());
}

void TrainingPanel::onRunStarted(const RunInfo& info)
{
    m_progress->setRange(0, static_cast<int>(std::min<qint64>(info.totalSteps, 1'000'000'000)));
    m_progress->setValue(static_cast<int>(info.startStep));
    m_axisX->setRange(static_cast<double>(info.startStep), static_cast<double>(std::max<qint64>(info.totalSteps, info.startStep + 1)));
    m_stats->setText(tr("%1 model, %2 parameters, %3 train / %4 held out, on %5")
                         .arg(info.kind)
                         .arg(info.parameters)
                         .arg(info.trainCount)
                         .arg(info.testCount)
                         .arg(info.device));
    Q_EMIT statusMessage(tr("Training %1 model on %2 from step %3").arg(info.kind, info.device).arg(info.startStep));
}

void TrainingPanel::onProgress(const ProgressInfo& p)
{
    QList<QPointF> raw;
    QList<QPointF> smooth;
    for (const QPointF& pt : p.losses) {
        if (pt.y() > 0) {
            raw.append(pt);
        }
    }
    for (const QPointF& pt : p.smoothed) {
        if (pt.y() > 0) {
            smooth.append(pt);
        }
    }
    for (const QPointF& pt : raw) {
        if (m_loss->count() == 0 && pt == raw.front()) {
            m_minLoss = m_maxLoss = pt.y();
        }
        m_minLoss = std::min(m_minLoss, pt.y());
        m_maxLoss = std::max(m_maxLoss, pt.y());
    }
    if (!raw.isEmpty()) {
        m_loss->append(raw);
        m_smoothed->append(smooth);
        const double lo = std::pow(10.0, std::floor(std::log10(m_minLoss)));
        const double hi = std::pow(10.0, std::ceil(std::log10(m_maxLoss * 1.0001)));
        m_axisY->setRange(lo, std::max(hi, lo * 10));
    }
    m_progress->setValue(static_cast<int>(p.step));
    const QString text = tr("step %1/%2  loss %3 (avg %4)  lr %5  %6 items/s  ETA %7%8")
                             .arg(p.step)
                             .arg(p.totalSteps)
                             .arg(p.loss, 0, 'g', 4)
                             .arg(p.smoothedLoss, 0, 'g', 4)
                             .arg(p.lr, 0, 'g', 3)
                             .arg(p.itemsPerSecond, 0, 'f', 1)
                             .arg(formatDuration(p.etaSeconds))
                             .arg(p.paused ? tr("  (paused)") : QString());
    m_stats->setText(text);
    Q_EMIT statusMessage(text);
}

void TrainingPanel::onFinished(const RunOutcome& o)
{
    m_progress->setRange(0, 1);
    m_progress->setValue(o.completed ? 1 : 0);
    const QString text = (o.completed ? tr("Finished") : tr("Stopped"))
        + tr(" at step %1, last loss %2, %3; checkpoint %4")
              .arg(o.step)
              .arg(o.lastLoss, 0, 'g', 4)
              .arg(formatDuration(o.seconds))
              .arg(o.checkpoint.isEmpty() ? tr("(none)") : QDir::toNativeSeparators(o.checkpoint));
    m_stats->setText(text);
    Q_EMIT statusMessage(text);
    updateButtons();
}

void TrainingPanel::onFailed(const QString& message)
{
    m_progress->setRange(0, 1);
    m_progress->setValue(0);
    m_stats->setText(tr("Training failed: %1").arg(message));
    Q_EMIT errorOccurred(tr("Training failed"), message);
    updateButtons();
}

void TrainingPanel::updateButtons()
{
    const bool running = m_controller->isRunning();
    m_start->setEnabled(!running);
    m_resumeRun->setEnabled(!running);
    m_preset->setEnabled(!running);
    m_pause->setEnabled(running);
    m_stop->setEnabled(running);
    m_pause->setText(running && m_controller->isPaused() ? tr("Resume") : tr("Pause"));
}

void TrainingPanel::clearChart()
{
    m_loss->clear();
    m_smoothed->clear();
    m_minLoss = m_maxLoss = 0.0;
    m_axisX->setRange(0, 1);
    m_axisY->setRange(1e-3, 1.0);
}

} // namespace wfm::gui
