// Sample exports besides .npz: binary PLY (point clouds) and CSV (point clouds and Gaussians).
// No torch here: the writers read the plain snapshots and stream through wfm::AtomicFileWriter,
// so a failed or interrupted write never leaves a partial file behind.

#include "engine/Engine.h"

#include "wfm/AtomicFile.h"
#include "wfm/Error.h"

#include <QFileInfo>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace wfm::gui {

namespace {

/// Output is collected in memory up to this many bytes between writes to the file.
constexpr std::size_t kFlushBytes = std::size_t { 1 } << 20;

/// Buffers output for an AtomicFileWriter (one write() call per megabyte rather than per row).
class BufferedFile
{
public:
    explicit BufferedFile(const QString& path)
        : m_file(path.toStdString())
    {
        m_buffer.reserve(kFlushBytes + 4096);
    }

    std::string& buffer() { return m_buffer; }
    void flushIfFull()
    {
        if (m_buffer.size() >= kFlushBytes) {
            flush();
        }
    }
    void commit()
    {
        flush();
        m_file.commit();
    }

private:
    void flush()
    {
        m_file.write(m_buffer);
        m_buffer.clear();
    }

    AtomicFileWriter m_file;
    std::string m_buffer;
};

void checkClouds(const CloudSnapshot& c)
{
    WFM_CHECK(c.count > 0, "no samples to write");
    WFM_CHECK(c.dim > 0 && c.maxPoints >= 0, "samples: bad shape [", c.count, ", ", c.maxPoints, ", ",
        c.dim, "]");
    const auto cells = static_cast<std::size_t>(c.count) * static_cast<std::size_t>(c.maxPoints);
    WFM_CHECK(c.points.size() == cells * static_cast<std::size_t>(c.dim) && c.weights.size() == cells,
        "samples: arrays do not match the shape [", c.count, ", ", c.maxPoints, ", ", c.dim, "]");
    WFM_CHECK(c.labels.empty() || c.labels.size() == static_cast<std::size_t>(c.count), "samples: ",
        c.labels.size(), " labels for ", c.count, " clouds");
}

void checkGaussians(const GaussianSnapshot& g)
{
    WFM_CHECK(g.count > 0, "no samples to write");
    WFM_CHECK(g.dim > 0, "samples: bad dimension ", g.dim);
    const auto n = static_cast<std::size_t>(g.count);
    const auto d = static_cast<std::size_t>(g.dim);
    WFM_CHECK(g.means.size() == n * d && g.covariances.size() == n * d * d,
        "samples: arrays do not match ", g.count, " Gaussians in ", g.dim, "-D");
    WFM_CHECK(g.labels.empty() || g.labels.size() == n, "samples: ", g.labels.size(), " labels for ",
        g.count, " Gaussians");
}

/// Label of item k, -1 when there are no labels.
std::int64_t labelOf(const std::vector<std::int64_t>& labels, int k)
{
    return labels.empty() ? -1 : labels[static_cast<std::size_t>(k)];
}

std::string_view labelName(const std::vector<std::string>& names, std::int64_t label)
{
    return label >= 0 && static_cast<std::uint64_t>(label) < names.size()
        ? std::string_view(names[static_cast<std::size_t>(label)])
        : std::string_view();
}

bool isLive(const CloudSnapshot& c, int k, int i)
{
    return c.weights[static_cast<std::size_t>(k) * static_cast<std::size_t>(c.maxPoints) + static_cast<std::size_t>(i)]
        > 0.0f;
}

const float* pointOf(const CloudSnapshot& c, int k, int i)
{
    return c.cloud(k) + static_cast<std::size_t>(i) * static_cast<std::size_t>(c.dim);
}

/// Appends the 4 bytes of `value` in little-endian order, whatever the host's byte order.
template <typename T>
void appendLittleEndian(std::string& out, T value)
{
    static_assert(sizeof(T) == 4);
    const auto bits = std::bit_cast<std::uint32_t>(value);
    const char bytes[4] = { static_cast<char>(bits & 0xffu), static_cast<char>((bits >> 8) & 0xffu),
        static_cast<char>((bits >> 16) & 0xffu), static_cast<char>((bits >> 24) & 0xffu) };
    out.append(bytes, 4);
}

/// Shortest text that reads back as the same float (std::to_chars: locale-independent).
void appendNumber(std::string& out, float value)
{
    char text[32];
    const auto result = std::to_chars(text, text + sizeof text, value);
    out.append(text, result.ptr);
}

void appendNumber(std::string& out, std::int64_t value)
{
    char text[24];
    const auto result = std::to_chars(text, text + sizeof text, value);
    out.append(text, result.ptr);
}

/// A CSV field as RFC 4180 writes it: quoted (inner quotes doubled) when it holds a comma, a
/// quote or a line break, or starts or ends with a space (which readers may trim otherwise).
void appendCsvField(std::string& out, std::string_view field)
{
    const bool quote = field.find_first_of(",\"\r\n") != std::string_view::npos
        || (!field.empty() && (field.front() == ' ' || field.back() == ' ' || field.front() == '\t' || field.back() == '\t'));
    if (!quote) {
        out.append(field);
        return;
    }
    out.push_back('"');
    for (const char ch : field) {
        if (ch == '"') {
            out.push_back('"');
        }
        out.push_back(ch);
    }
    out.push_back('"');
}

void writeCloudsCsv(const CloudSnapshot& c, const QString& path)
{
    checkClouds(c);
    BufferedFile file(path);
    std::string& out = file.buffer();
    out += "cloud,label,label_name";
    for (int a = 0; a < c.dim; ++a) {
        out += ",x";
        appendNumber(out, static_cast<std::int64_t>(a));
    }
    out += '\n';
    for (int k = 0; k < c.count; ++k) {
        const std::int64_t label = labelOf(c.labels, k);
        for (int i = 0; i < c.maxPoints; ++i) {
            if (!isLive(c, k, i)) {
                continue;
            }
            appendNumber(out, static_cast<std::int64_t>(k));
            out += ',';
            appendNumber(out, label);
            out += ',';
            appendCsvField(out, labelName(c.labelNames, label));
            const float* x = pointOf(c, k, i);
            for (int a = 0; a < c.dim; ++a) {
                out += ',';
                appendNumber(out, x[a]);
            }
            out += '\n';
            file.flushIfFull();
        }
    }
    file.commit();
}

void writeGaussiansCsv(const GaussianSnapshot& g, const QString& path)
{
    checkGaussians(g);
    const auto d = static_cast<std::size_t>(g.dim);
    BufferedFile file(path);
    std::string& out = file.buffer();
    out += "index,label,label_name";
    for (std::size_t a = 0; a < d; ++a) {
        out += ",mean_" + std::to_string(a);
    }
    // cov_IJ is unambiguous only while indices have one digit.
    const char* separator = d > 10 ? "_" : "";
    for (std::size_t r = 0; r < d; ++r) {
        for (std::size_t s = 0; s < d; ++s) {
            out += ",cov_" + std::to_string(r) + separator + std::to_string(s);
        }
    }
    out += '\n';
    for (int k = 0; k < g.count; ++k) {
        const std::int64_t label = labelOf(g.labels, k);
        appendNumber(out, static_cast<std::int64_t>(k));
        out += ',';
        appendNumber(out, label);
        out += ',';
        appendCsvField(out, labelName(g.labelNames, label));
        const float* mean = g.means.data() + static_cast<std::size_t>(k) * d;
        for (std::size_t a = 0; a < d; ++a) {
            out += ',';
            appendNumber(out, mean[a]);
        }
        const float* cov = g.covariances.data() + static_cast<std::size_t>(k) * d * d;
        for (std::size_t a = 0; a < d * d; ++a) {
            out += ',';
            appendNumber(out, cov[a]);
        }
        out += '\n';
        file.flushIfFull();
    }
    file.commit();
}

} // namespace

bool sampleFormatForPath(const QString& path, SampleFormat* format)
{
    const QString suffix = QFileInfo(path).suffix().toLower();
    SampleFormat f = SampleFormat::Npz;
    if (suffix == QLatin1String("npz")) {
        f = SampleFormat::Npz;
    } else if (suffix == QLatin1String("ply")) {
        f = SampleFormat::Ply;
    } else if (suffix == QLatin1String("csv")) {
        f = SampleFormat::Csv;
    } else {
        return false;
    }
    if (format) {
        *format = f;
    }
    return true;
}

void writeSamplesPly(const Samples& samples, const QString& path)
{
    WFM_CHECK(!samples.gaussian, "PLY holds point clouds only: save Gaussian samples as .npz or .csv");
    const CloudSnapshot& c = samples.clouds;
    checkClouds(c);
    std::int64_t vertices = 0;
    for (int k = 0; k < c.count; ++k) {
        vertices += c.liveCount(k);
        const std::int64_t label = labelOf(c.labels, k);
        WFM_CHECK(label >= std::numeric_limits<std::int32_t>::min() && label <= std::numeric_limits<std::int32_t>::max(),
            "PLY: label ", label, " of cloud ", k, " does not fit an int");
    }

    BufferedFile file(path);
    std::string& out = file.buffer();
    out += "ply\nformat binary_little_endian 1.0\n";
    out += "comment WFM Studio samples: " + std::to_string(c.count) + " clouds in " + std::to_string(c.dim) + "-D\n";
    // JSON keeps every name on the comment's one line (escaped line breaks), unambiguously.
    out += "comment label_names " + nlohmann::json(c.labelNames).dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace) + "\n";
    out += "element vertex " + std::to_string(vertices) + "\n";
    out += "property float x\nproperty float y\nproperty float z\n";
    for (int a = 3; a < c.dim; ++a) {
        out += "property float f" + std::to_string(a) + "\n";
    }
    out += "property int cloud\nproperty int label\nend_header\n";
    const int columns = std::max(3, c.dim);
    for (int k = 0; k < c.count; ++k) {
        const auto label = static_cast<std::int32_t>(labelOf(c.labels, k));
        for (int i = 0; i < c.maxPoints; ++i) {
            if (!isLive(c, k, i)) {
                continue;
            }
            const float* x = pointOf(c, k, i);
            for (int a = 0; a < columns; ++a) {
                appendLittleEndian(out, a < c.dim ? x[a] : 0.0f);
            }
            appendLittleEndian(out, static_cast<std::int32_t>(k));
            appendLittleEndian(out, label);
            file.flushIfFull();
        }
    }
    file.commit();
}

void writeSamplesCsv(const Samples& samples, const QString& path)
{
    if (samples.gaussian) {
        writeGaussiansCsv(samples.gaussians, path);
    } else {
        writeCloudsCsv(samples.clouds, path);
    }
}

void writeSamples(const Samples& samples, const QString& path, SampleFormat format)
{
    switch (format) {
    case SampleFormat::Npz:
        writeSamplesNpz(samples, path);
        return;
    case SampleFormat::Ply:
        writeSamplesPly(samples, path);
        return;
    case SampleFormat::Csv:
        writeSamplesCsv(samples, path);
        return;
    }
}

} // namespace wfm::gui
