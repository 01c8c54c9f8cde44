#pragma once

// The GUI's thin, torch-free window onto the engine (core + io). Everything here converts
// between Qt/plain values and engine calls; no maths. Functions that do real work (loading,
// generation, writing) may be called from any thread and throw std::exception (wfm::Error and
// c10::Error included) with a one-line message.

#include "wfm/Snapshot.h"

#include <QMetaType>
#include <QPointF>
#include <QString>
#include <QStringList>
#include <QVector>

#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <vector>

namespace wfm::gui {

/// One-line message of an exception from the engine (LibTorch errors without their backtrace).
QString errorMessage(const std::exception& e);

/// Call first in main(), before QApplication: may re-execute the program once so that
/// OpenBLAS uses the CPU's AVX-512 kernels (wfm::ensureBlasKernel).
void prepareProcess(int argc, char** argv);
/// LibTorch threads and the io readers (mesh, AnnData, letters, ...). Call once at start-up.
void initEngine();

/// Built-in dataset specs ("builtin:rings", ..., "builtin:gaussian-spiral", ...).
QStringList builtinSpecs();

/// The data spec for a dropped or opened file or folder (npz/npy as is, meshes as mesh:,
/// IDX as idx:, AnnData as h5ad:, tables as csv:, PNG as png:).
QString specForPath(const QString& path);

/// A device the training can run on: id as TrainConfig takes it ("cpu", "cuda:0"), and a name.
struct DeviceChoice
{
    QString id;
    QString name;
};
QVector<DeviceChoice> deviceChoices();

/// A loaded dataset, summarised, with a few samples to show.
struct LoadedData
{
    QString spec;
    bool gaussian = false;
    QString summary; ///< multi-line text
    qint64 count = 0;
    int dim = 0;
    QStringList labelNames;
    QString error;              ///< non-empty when loading failed (set by background tasks)
    CloudSnapshot clouds;       ///< the first `previewCount` clouds (point-cloud data)
    GaussianSnapshot gaussians; ///< up to 400 Gaussians (Gaussian data)
    CloudSnapshot gallery;      ///< the first `galleryCount` clouds, for the thumbnail gallery
    double seconds = 0.0;
};
/// Loads `spec` (Gaussian specs as Gaussians). `previewCount` clouds spread over the dataset
/// go to `clouds` (the viewport), the first `galleryCount` to `gallery`. Throws on bad specs or data.
LoadedData loadData(const QString& spec, int previewCount, int galleryCount = 0);

/// The settings the training form edits; everything else comes from `baseJson` (a preset or a
/// loaded config; empty = the engine's defaults) and is kept.
struct TrainForm
{
    QString baseJson;
    QString spec;
    QString kind = QStringLiteral("auto");
    qint64 steps = 1000;
    int batch = 16;
    double lr = 2e-4;
    int width = 128;
    int blocks = 4;
    int heads = 4;
    QString minibatch = QStringLiteral("chamfer");
    QString map = QStringLiteral("rounded");
    QString device = QStringLiteral("auto");
    qint64 logEvery = 10;
    qint64 sampleEvery = 100;
    qint64 checkpointEvery = 500;
    quint64 seed = 0;
};
/// The form's values for the engine's defaults.
TrainForm defaultTrainForm();
/// Reads a config JSON file (or a ":/" resource) into a form (baseJson = the file's settings).
/// Throws ConfigError.
TrainForm trainFormFromFile(const QString& path);
/// The same from JSON text; `what` names its origin in errors. Throws ConfigError (naming the
/// section.key of a bad or unknown setting).
TrainForm trainFormFromJson(const QString& json, const QString& what);
/// Every setting at the engine's defaults, as JSON.
QString defaultConfigJson();
/// The complete, validated config JSON for the form. Throws ConfigError.
QString configJsonFromForm(const TrainForm& form);
QStringList minibatchCostNames();
QStringList mapKindNames();
QStringList integratorNames();

/// A trained model ready to generate (a snapshot of weights; safe to use from any thread).
class Model;
using ModelPtr = std::shared_ptr<const Model>;

struct ModelInfo
{
    bool gaussian = false;
    int dim = 0;
    qint64 step = 0;
    QStringList labelNames;
    int defaultSteps = 100;
    double defaultGuidance = 1.0;
    QString integrator;
};
ModelInfo modelInfo(const Model& model);
/// Loads the model of a run folder (or a checkpoint file). Throws CheckpointError.
ModelPtr loadModel(const QString& runDir);

struct GenerateOptions
{
    int count = 4;
    /// 0..L-1, kRandomLabel or kNullLabel.
    qint64 label = -1;
    double guidance = std::numeric_limits<double>::quiet_NaN(); ///< NaN = the run's
    QString integrator; ///< empty = the run's
    int steps = 0;      ///< 0 = the run's
    bool trajectory = true;
    quint64 seed = 0;
};

/// Generated samples, in data units; with a trajectory, frames[t] holds every sample at time t
/// (frame 0 = noise, last = the result).
struct Samples
{
    QString error; ///< non-empty when generation failed (set by background tasks)
    bool gaussian = false;
    CloudSnapshot clouds;
    GaussianSnapshot gaussians;
    std::vector<CloudSnapshot> cloudFrames;
    std::vector<GaussianSnapshot> gaussianFrames;
    qint64 modelStep = 0;
    double seconds = 0.0;
    /// Frames hold several distributions meant to be overlaid in place (a geodesic with its
    /// end points) rather than laid out side by side.
    bool overlay = false;
    int frameCount() const
    {
        return static_cast<int>(gaussian ? gaussianFrames.size() : cloudFrames.size());
    }
};
Samples generate(const Model& model, const GenerateOptions& options);

/// The Wasserstein geodesic between distributions `i` and `j` of the data's preview, as
/// `frames` frames for t in [0, 1], each holding the start (label 0), the end (1) and the
/// interpolant at t (2), overlaid. Point clouds: entropic OT (relative eps 0.002, 200
/// iterations) and the greedy rounded map T, displacement interpolation (1-t) x + t T(x).
/// Gaussians: the Bures-Wasserstein (McCann) geodesic. Throws ConfigError for bad indices.
Samples geodesic(const LoadedData& data, int i, int j, int frames);

/// What the Evaluate tab computes.
struct EvaluateOptions
{
    int maxReference = 64;  ///< held-out distributions compared (the first ones); as many are generated
    int chamferPoints = 128; ///< points per cloud for Chamfer (a seeded random subset)
    int emdPoints = 64;      ///< points per cloud for exact EMD; 0 = no EMD
    quint64 seed = 0;
};
struct MetricRow
{
    QString distance; ///< chamfer, emd, bures_wasserstein
    QString label; ///< empty: all samples; else the metric within this label only
    double nna = 0.0;
    double cov = 0.0;
    double mmd = 0.0;
};
/// Metrics of a model's samples against the held-out split of its run's data (the run's
/// data.test_fraction and data.split_seed), and both sets for display.
struct Evaluation
{
    QString error; ///< non-empty when evaluation failed (set by background tasks)
    QString reference; ///< what the reference set is
    bool gaussian = false;
    QVector<MetricRow> rows;
    bool hasNiche = false;
    double nicheReal = 0.0, nicheGenerated = 0.0, nicheChance = 0.0;
    CloudSnapshot realClouds, generatedClouds;
    GaussianSnapshot realGaussians, generatedGaussians;
    double seconds = 0.0;
};
/// Generates as many samples as the reference has (labels of a conditional model follow the
/// reference) and computes 1-NNA, COV and MMD under Chamfer and exact EMD (clouds) or
/// Bures-Wasserstein (Gaussians); niche label accuracy for niche data (tissue, h5ad, csv) with
/// labels. Throws ConfigError when the run has no held-out split.
Evaluation evaluate(const Model& model, const EvaluateOptions& options);

/// Writes the final samples as .npz (point clouds: points/weights/labels; Gaussians:
/// means/covariances/labels), atomically. Throws on failure.
void writeSamplesNpz(const Samples& samples, const QString& path);

/// File formats the final samples export to (engine/SampleExport.cpp).
enum class SampleFormat
{
    Npz, ///< NumPy archive (writeSamplesNpz)
    Ply, ///< binary little-endian PLY, point clouds only (writeSamplesPly)
    Csv  ///< CSV table, one row per point or per Gaussian (writeSamplesCsv)
};
/// The format named by the suffix of `path` ("npz", "ply", "csv", any case); false for another
/// suffix or none.
bool sampleFormatForPath(const QString& path, SampleFormat* format);
/// Writes the final point-cloud samples as binary little-endian PLY ("format
/// binary_little_endian 1.0"), atomically: one vertex per live point (weight > 0) of every
/// cloud, in cloud order, with float x, y, z (the first three coordinates; y and z are 0 for
/// data of fewer dimensions), float f3, f4, ... for coordinates beyond the third, int cloud
/// (sample index) and int label (-1 without labels). A header comment "label_names" holds the
/// label names as a JSON array (index = label). Throws wfm::ConfigError for Gaussian samples or
/// inconsistent arrays, wfm::Error when the file cannot be written (the target is then left as
/// it was).
void writeSamplesPly(const Samples& samples, const QString& path);
/// Writes the final samples as a UTF-8 CSV table with a header line, atomically. Point clouds:
/// one row per live point, "cloud,label,label_name,x0,x1,...". Gaussians: one row per Gaussian,
/// "index,label,label_name,mean_0,...,cov_00,cov_01,..." (covariance row-major; cov_I_J from 11
/// dimensions on). label is -1 and label_name empty without labels; label names are quoted as
/// RFC 4180 says when they hold a comma, a quote or a line break. Numbers are written in the
/// shortest form that reads back as the same float32 (at most 9 significant digits, '.' as
/// decimal point whatever the locale); lines end with LF. Throws like writeSamplesPly
/// (Gaussians are accepted).
void writeSamplesCsv(const Samples& samples, const QString& path);
/// Writes the final samples in `format`. Throws like the writer it calls.
void writeSamples(const Samples& samples, const QString& path, SampleFormat format);

/// Stored config of a run folder, as JSON text. Throws CheckpointError.
QString runConfigJson(const QString& runDir);

/// Training progress as the GUI shows it (several steps' losses batched together).
struct ProgressInfo
{
    qint64 step = 0;
    qint64 totalSteps = 0;
    double loss = 0.0;
    double smoothedLoss = 0.0;
    double lr = 0.0;
    double itemsPerSecond = 0.0;
    double elapsedSeconds = 0.0;
    double etaSeconds = 0.0;
    bool paused = false;
    QVector<QPointF> losses;   ///< (step, loss) since the previous report
    QVector<QPointF> smoothed; ///< (step, smoothed loss)
};

struct RunInfo
{
    QString runDir;
    QString kind;
    QString device;
    qint64 trainCount = 0;
    qint64 testCount = 0;
    qint64 parameters = 0;
    qint64 startStep = 0;
    qint64 totalSteps = 0;
    qint64 sampleEvery = 0;
};

struct RunOutcome
{
    qint64 step = 0;
    bool completed = false;
    bool stopped = false;
    double lastLoss = 0.0;
    double seconds = 0.0;
    QString checkpoint;
};

} // namespace wfm::gui

Q_DECLARE_METATYPE(wfm::gui::LoadedData)
Q_DECLARE_METATYPE(wfm::gui::ModelPtr)
Q_DECLARE_METATYPE(wfm::gui::Samples)
Q_DECLARE_METATYPE(wfm::gui::ProgressInfo)
Q_DECLARE_METATYPE(wfm::gui::RunInfo)
Q_DECLARE_METATYPE(wfm::gui::RunOutcome)
Q_DECLARE_METATYPE(wfm::gui::Evaluation)
