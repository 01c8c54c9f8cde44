#include "GeneratePanel.h"

#include "wfm/widgets/GalleryView.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QKeySequence>
#include <QLabel>
#include <QPushButton>
#include <QSettings>
#include <QSlider>
#include <QSpinBox>
#include <QStyle>
#include <QToolButton>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <cmath>

namespace wfm::gui {

namespace {
constexpr int kBaseFrameMs = 40; ///< 25 frames/s at speed 1
}

GeneratePanel::GeneratePanel(QWidget* parent)
    : QWidget(parent)
{
    qRegisterMetaType<wfm::gui::Samples>();
    qRegisterMetaType<wfm::gui::ModelPtr>();
    auto* layout = new QVBoxLayout(this);

    auto* modelRow = new QHBoxLayout;
    m_modelLabel = new QLabel(tr("No model: train one or load a run"), this);
    m_modelLabel->setObjectName(QStringLiteral("modelLabel"));
    m_modelLabel->setWordWrap(true);
    auto* loadRunButton = new QPushButton(tr("Load run…"), this);
    modelRow->addWidget(m_modelLabel, 1);
    modelRow->addWidget(loadRunButton);
    layout->addLayout(modelRow);

    auto* form = new QFormLayout;
    m_count = new QSpinBox(this);
    m_count->setObjectName(QStringLiteral("genCount"));
    m_count->setRange(1, 4096);
    m_count->setValue(6);
    m_count->setToolTip(tr("Number of distributions to generate"));
    form->addRow(tr("Count"), m_count);
    m_label = new QComboBox(this);
    m_label->setObjectName(QStringLiteral("genLabel"));
    m_label->setToolTip(tr("Condition on a label (random: one drawn per sample; none: unconditional)"));
    form->addRow(tr("Label"), m_label);
    m_guidance = new QDoubleSpinBox(this);
    m_guidance->setObjectName(QStringLiteral("genGuidance"));
    m_guidance->setRange(0.0, 20.0);
    m_guidance->setSingleStep(0.1);
    m_guidance->setValue(1.5);
    m_guidance->setToolTip(tr("Classifier-free guidance scale (1 = plain conditional field)"));
    form->addRow(tr("Guidance"), m_guidance);
    m_integrator = new QComboBox(this);
    m_integrator->setObjectName(QStringLiteral("genIntegrator"));
    m_integrator->addItems(integratorNames());
    m_integrator->setCurrentText(QStringLiteral("midpoint"));
    form->addRow(tr("Integrator"), m_integrator);
    m_steps = new QSpinBox(this);
    m_steps->setObjectName(QStringLiteral("genSteps"));
    m_steps->setRange(1, 10000);
    m_steps->setValue(100);
    form->addRow(tr("Steps"), m_steps);
    m_seed = new QSpinBox(this);
    m_seed->setRange(0, 1'000'000'000);
    form->addRow(tr("Seed"), m_seed);
    layout->addLayout(form);

    m_generate = new QPushButton(tr("Generate"), this);
    m_generate->setObjectName(QStringLiteral("generate"));
    m_generate->setShortcut(QKeySequence(tr("Ctrl+G")));
    layout->addWidget(m_generate);

    auto* timeline = new QHBoxLayout;
    m_play = new QToolButton(this);
    m_play->setObjectName(QStringLiteral("play"));
    m_play->setIcon(style()->standardIcon(QStyle::SP_MediaPlay));
    m_play->setToolTip(tr("Play / pause (Space)"));
    m_play->setShortcut(QKeySequence(Qt::Key_Space));
    m_slider = new QSlider(Qt::Horizontal, this);
    m_slider->setObjectName(QStringLiteral("timeline"));
    m_slider->setRange(0, 0);
    m_frameLabel = new QLabel(QStringLiteral("t = –"), this);
    m_frameLabel->setMinimumWidth(70);
    timeline->addWidget(m_play);
    timeline->addWidget(m_slider, 1);
    timeline->addWidget(m_frameLabel);
    layout->addLayout(timeline);

    auto* playOptions = new QHBoxLayout;
    m_loop = new QCheckBox(tr("Loop"), this);
    m_loop->setChecked(true);
    m_speed = new QComboBox(this);
    for (double s : { 0.25, 0.5, 1.0, 2.0, 4.0 }) {
        m_speed->addItem(QStringLiteral("%1x").arg(s), s);
    }
    m_speed->setCurrentIndex(2);
    playOptions->addWidget(m_loop);
    playOptions->addWidget(new QLabel(tr("Speed"), this));
    playOptions->addWidget(m_speed);
    playOptions->addStretch(1);
    layout->addLayout(playOptions);

    auto* exportRow = new QHBoxLayout;
    m_exportVideo = new QPushButton(tr("Export video…"), this);
    m_exportSamples = new QPushButton(tr("Export samples…"), this);
    exportRow->addWidget(m_exportVideo);
    exportRow->addWidget(m_exportSamples);
    layout->addLayout(exportRow);
    m_gallery = new wfm::GalleryView(this);
    m_gallery->setObjectName(QStringLiteral("generatedGallery"));
    m_gallery->setToolTip(tr("The generated samples (t = 1)"));
    layout->addWidget(m_gallery, 1);

    connect(loadRunButton, &QPushButton::clicked, this, &GeneratePanel::loadRun);
    connect(m_generate, &QPushButton::clicked, this, &GeneratePanel::generate);
    connect(m_play, &QToolButton::clicked, this, [this] { setPlaying(!isPlaying()); });
    connect(m_slider, &QSlider::valueChanged, this, [this](int frame) {
        if (frame < m_samples.frameCount()) {
            m_frameLabel->setText(QStringLiteral("t = %1").arg(
                m_samples.frameCount() > 1 ? double(frame) / (m_samples.frameCount() - 1) : 1.0, 0, 'f', 2));
            Q_EMIT frameChanged(m_samples, frame);
        }
    });
    connect(m_speed, &QComboBox::currentIndexChanged, this, [this] {
        m_timer.setInterval(static_cast<int>(std::lround(kBaseFrameMs / m_speed->currentData().toDouble())));
    });
    connect(m_exportVideo, &QPushButton::clicked, this, &GeneratePanel::exportVideoRequested);
    connect(m_exportSamples, &QPushButton::clicked, this, &GeneratePanel::exportSamples);
    connect(&m_watcher, &QFutureWatcher<Samples>::finished, this, &GeneratePanel::finished);
    m_timer.setInterval(kBaseFrameMs);
    connect(&m_timer, &QTimer::timeout, this, &GeneratePanel::advance);
    updateControls();
}

GeneratePanel::~GeneratePanel()
{
    m_watcher.waitForFinished();
}

void GeneratePanel::setModel(const ModelPtr& model, const QString& origin)
{
    m_model = model;
    if (!model) {
        m_modelLabel->setText(tr("No model: train one or load a run"));
        updateControls();
        return;
    }
    const ModelInfo info = modelInfo(*model);
    m_modelLabel->setText(tr("%1 model, d = %2, step %3 (%4)")
                              .arg(info.gaussian ? tr("Gaussian") : tr("point-cloud"))
                              .arg(info.dim)
                              .arg(info.step)
                              .arg(origin));
    const QString previous = m_label->currentText();
    m_label->clear();
    m_label->addItem(tr("random"), QVariant::fromValue<qlonglong>(GenerateOptions().label));
    m_label->addItem(tr("none (unconditional)"), QVariant::fromValue<qlonglong>(-2));
    for (int i = 0; i < info.labelNames.size(); ++i) {
        m_label->addItem(info.labelNames[i], QVariant::fromValue<qlonglong>(i));
    }
    const int again = m_label->findText(previous);
    m_label->setCurrentIndex(again >= 0 ? again : 0);
    m_label->setEnabled(!info.labelNames.isEmpty());
    m_guidance->setValue(info.defaultGuidance);
    m_steps->setValue(std::max(1, info.defaultSteps));
    if (!info.integrator.isEmpty()) {
        m_integrator->setCurrentText(info.integrator);
    }
    updateControls();
}

void GeneratePanel::setCount(int count)
{
    m_count->setValue(count);
}

void GeneratePanel::setSteps(int steps)
{
    m_steps->setValue(steps);
}

bool GeneratePanel::isGenerating() const
{
    return m_watcher.isRunning();
}

bool GeneratePanel::generate()
{
    if (!m_model || m_watcher.isRunning()) {
        return false;
    }
    GenerateOptions o;
    o.count = m_count->value();
    o.label = m_label->count() > 0 && m_label->isEnabled() ? m_label->currentData().toLongLong() : GenerateOptions().label;
    o.guidance = m_guidance->value();
    o.integrator = m_integrator->currentText();
    o.steps = m_steps->value();
    o.trajectory = true;
    o.seed = static_cast<quint64>(m_seed->value());
    setPlaying(false);
    const ModelPtr model = m_model;
    m_generate->setEnabled(false);
    Q_EMIT statusMessage(tr("Generating %1 samples…").arg(o.count));
    m_watcher.setFuture(QtConcurrent::run([model, o] {
        try {
            return wfm::gui::generate(*model, o);
        } catch (const std::exception& e) {
            Samples failed;
            failed.error = errorMessage(e);
            return failed;
        }
    }));
    return true;
}

void GeneratePanel::finished()
{
    Samples result = m_watcher.result();
    if (!result.error.isEmpty()) {
        updateControls();
        Q_EMIT errorOccurred(tr("Generate"), result.error);
        return;
    }
    m_samples = std::move(result);
    if (m_samples.gaussian) {
        m_gallery->setGaussians(m_samples.gaussians);
    } else {
        m_gallery->setClouds(m_samples.clouds);
    }
    const int frames = m_samples.frameCount();
    {
        const QSignalBlocker block(m_slider);
        m_slider->setRange(0, std::max(0, frames - 1));
        m_slider->setValue(std::max(0, frames - 1));
    }
    m_frameLabel->setText(QStringLiteral("t = 1.00"));
    updateControls();
    Q_EMIT statusMessage(tr("Generated %1 samples in %2 s (%3 frames)")
                             .arg(m_samples.gaussian ? m_samples.gaussians.count : m_samples.clouds.count)
                             .arg(m_samples.seconds, 0, 'f', 2)
                             .arg(frames));
    Q_EMIT samplesReady(m_samples);
    Q_EMIT frameChanged(m_samples, frames > 0 ? frames - 1 : -1);
}

void GeneratePanel::setSamples(const Samples& samples, const QString& what)
{
    setPlaying(false);
    m_samples = samples;
    const int frames = m_samples.frameCount();
    {
        const QSignalBlocker block(m_slider);
        m_slider->setRange(0, std::max(0, frames - 1));
        m_slider->setValue(0);
    }
    m_frameLabel->setText(QStringLiteral("t = 0.00"));
    updateControls();
    Q_EMIT statusMessage(tr("%1: %2 frames; press play or drag the timeline").arg(what).arg(frames));
    Q_EMIT samplesReady(m_samples);
    Q_EMIT frameChanged(m_samples, 0);
}

int GeneratePanel::currentFrame() const
{
    return m_slider->value();
}

void GeneratePanel::setFrame(int frame)
{
    m_slider->setValue(frame);
}

void GeneratePanel::setPlaying(bool playing)
{
    if (playing && m_samples.frameCount() > 1) {
        if (m_slider->value() >= m_slider->maximum()) {
            m_slider->setValue(0);
        }
        m_timer.start();
    } else {
        m_timer.stop();
    }
    m_play->setIcon(style()->standardIcon(m_timer.isActive() ? QStyle::SP_MediaPause : QStyle::SP_MediaPlay));
}

void GeneratePanel::advance()
{
    int next = m_slider->value() + 1;
    if (next > m_slider->maximum()) {
        if (!m_loop->isChecked()) {
            setPlaying(false);
            return;
        }
        next = 0;
    }
    m_slider->setValue(next);
}

void GeneratePanel::loadRun()
{
    QSettings settings;
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Load a run folder"),
        settings.value(QStringLiteral("train/lastRun"), QDir::homePath()).toString());
    if (dir.isEmpty()) {
        return;
    }
    try {
        setModel(loadModel(dir), QDir::toNativeSeparators(dir));
    } catch (const std::exception& e) {
        Q_EMIT errorOccurred(tr("Load run"), errorMessage(e));
    }
}

void GeneratePanel::exportSamples()
{
    if (m_samples.frameCount() == 0 && m_samples.clouds.count == 0 && m_samples.gaussians.count == 0) {
        return;
    }
    // PLY holds points only, so Gaussian samples are offered .npz and .csv.
    struct Choice
    {
        QString filter;
        QString suffix;
    };
    QVector<Choice> choices { { tr("NumPy archives (*.npz)"), QStringLiteral("npz") } };
    if (!m_samples.gaussian) {
        choices.push_back({ tr("PLY point clouds (*.ply)"), QStringLiteral("ply") });
    }
    choices.push_back({ tr("CSV tables (*.csv)"), QStringLiteral("csv") });
    QSettings settings;
    const QString lastSuffix = settings.value(QStringLiteral("export/samplesFormat"), QStringLiteral("npz")).toString();
    QStringList filters;
    QString selected = choices.front().filter;
    QString suffix = choices.front().suffix;
    for (const Choice& c : choices) {
        filters << c.filter;
        if (c.suffix == lastSuffix) {
            selected = c.filter;
            suffix = c.suffix;
        }
    }
    QString path = QFileDialog::getSaveFileName(this, tr("Export samples"),
        QDir(settings.value(QStringLiteral("export/lastDir"), QDir::homePath()).toString())
            .filePath(QStringLiteral("samples.") + suffix),
        filters.join(QStringLiteral(";;")), &selected);
    if (path.isEmpty()) {
        return;
    }
    if (!sampleFormatForPath(path, nullptr)) {
        // No suffix or another one: the chosen filter's.
        for (const Choice& c : choices) {
            if (c.filter == selected) {
                suffix = c.suffix;
            }
        }
        path += QLatin1Char('.') + suffix;
    }
    settings.setValue(QStringLiteral("export/lastDir"), QFileInfo(path).absolutePath());
    settings.setValue(QStringLiteral("export/samplesFormat"), QFileInfo(path).suffix().toLower());
    exportSamplesTo(path);
}

bool GeneratePanel::exportSamplesTo(const QString& path)
{
    SampleFormat format = SampleFormat::Npz;
    if (!sampleFormatForPath(path, &format)) {
        Q_EMIT errorOccurred(tr("Export samples"),
            tr("Cannot tell the file type of %1: use .npz, .ply or .csv").arg(QDir::toNativeSeparators(path)));
        return false;
    }
    try {
        writeSamples(m_samples, path, format);
    } catch (const std::exception& e) {
        Q_EMIT errorOccurred(tr("Export samples"), errorMessage(e));
        return false;
    }
    Q_EMIT statusMessage(tr("Saved %1").arg(QDir::toNativeSeparators(path)));
    return true;
}

void GeneratePanel::updateControls()
{
    const bool haveModel = static_cast<bool>(m_model);
    const bool haveFrames = m_samples.frameCount() > 1;
    m_generate->setEnabled(haveModel && !m_watcher.isRunning());
    m_play->setEnabled(haveFrames);
    m_slider->setEnabled(haveFrames);
    m_exportVideo->setEnabled(haveFrames);
    m_exportSamples->setEnabled(m_samples.clouds.count > 0 || m_samples.gaussians.count > 0);
}

} // namespace wfm::gui
