#include "ConfigDialog.h"

#include <QDialogButtonBox>
#include <QHeaderView>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QJsonValue>
#include <QLabel>
#include <QLocale>
#include <QTreeWidget>
#include <QVBoxLayout>

namespace wfm::gui {

namespace {

constexpr int kKeyColumn = 0;
constexpr int kValueColumn = 1;
constexpr int kDefaultColumn = 2;
/// QJsonValue::Type of a leaf's original value.
constexpr int kTypeRole = Qt::UserRole + 1;

QString textOf(const QJsonValue& v)
{
    switch (v.type()) {
    case QJsonValue::Bool:
        return v.toBool() ? QStringLiteral("true") : QStringLiteral("false");
    case QJsonValue::Double:
        return QString::number(v.toDouble(), 'g', QLocale::FloatingPointShortest);
    case QJsonValue::String:
        return v.toString();
    case QJsonValue::Array:
        return QString::fromUtf8(QJsonDocument(v.toArray()).toJson(QJsonDocument::Compact));
    case QJsonValue::Object:
        return QString::fromUtf8(QJsonDocument(v.toObject()).toJson(QJsonDocument::Compact));
    default:
        return QStringLiteral("null");
    }
}

/// Any JSON value written as text (a number, true/false, null, "text", [..], {..}).
bool parseJsonValue(const QString& text, QJsonValue* out)
{
    QJsonParseError err;
    const QJsonDocument doc = QJsonDocument::fromJson(QStringLiteral("[%1]").arg(text).toUtf8(), &err);
    if (err.error != QJsonParseError::NoError || !doc.isArray() || doc.array().size() != 1) {
        return false;
    }
    *out = doc.array().at(0);
    return true;
}

/// `text` read as a value of the setting's original type; false if it is not one.
bool parseAs(QJsonValue::Type type, const QString& raw, QJsonValue* out)
{
    const QString text = raw.trimmed();
    switch (type) {
    case QJsonValue::Bool:
        if (text.compare(QLatin1String("true"), Qt::CaseInsensitive) == 0) {
            *out = true;
            return true;
        }
        if (text.compare(QLatin1String("false"), Qt::CaseInsensitive) == 0) {
            *out = false;
            return true;
        }
        return false;
    case QJsonValue::Double: {
        bool ok = false;
        const double v = text.toDouble(&ok);
        if (ok) {
            *out = v;
        }
        return ok;
    }
    case QJsonValue::String:
        *out = raw;
        return true;
    case QJsonValue::Array:
        return parseJsonValue(text, out) && out->isArray();
    case QJsonValue::Object:
        return parseJsonValue(text, out) && out->isObject();
    default:
        // An unset (null) setting takes any JSON value; anything else is text.
        if (!parseJsonValue(text, out)) {
            *out = raw;
        }
        return true;
    }
}

QString pathOf(const QTreeWidgetItem* item)
{
    QStringList parts;
    for (const QTreeWidgetItem* i = item; i != nullptr; i = i->parent()) {
        parts.prepend(i->text(kKeyColumn));
    }
    return parts.join(QLatin1Char('.'));
}

void addObject(QTreeWidgetItem* parent, QTreeWidget* tree, const QJsonObject& object, const QJsonObject& defaults)
{
    for (auto it = object.begin(); it != object.end(); ++it) {
        auto* item = parent != nullptr ? new QTreeWidgetItem(parent) : new QTreeWidgetItem(tree);
        item->setText(kKeyColumn, it.key());
        const QJsonValue dflt = defaults.value(it.key());
        if (it.value().isObject()) {
            addObject(item, tree, it.value().toObject(), dflt.toObject());
            item->setFlags(item->flags() & ~Qt::ItemIsEditable);
            item->setExpanded(true);
            continue;
        }
        item->setText(kValueColumn, textOf(it.value()));
        item->setData(kValueColumn, kTypeRole, static_cast<int>(it.value().type()));
        item->setText(kDefaultColumn, dflt.isUndefined() ? QString() : textOf(dflt));
        item->setFlags(item->flags() | Qt::ItemIsEditable);
        const QString path = pathOf(item);
        item->setToolTip(kValueColumn,
            dflt.isUndefined() ? path : ConfigDialog::tr("%1 (engine default: %2)").arg(path, textOf(dflt)));
        item->setForeground(kDefaultColumn, tree->palette().brush(QPalette::Disabled, QPalette::Text));
    }
}

bool readObject(const QTreeWidgetItem* parent, const QTreeWidget* tree, QJsonObject* out, QString* error)
{
    const int n = parent != nullptr ? parent->childCount() : tree->topLevelItemCount();
    for (int k = 0; k < n; ++k) {
        const QTreeWidgetItem* item = parent != nullptr ? parent->child(k) : tree->topLevelItem(k);
        const QString key = item->text(kKeyColumn);
        if (item->childCount() > 0) {
            QJsonObject child;
            if (!readObject(item, tree, &child, error)) {
                return false;
            }
            out->insert(key, child);
            continue;
        }
        const QVariant type = item->data(kValueColumn, kTypeRole);
        if (!type.isValid()) {
            out->insert(key, QJsonObject()); // an empty section
            continue;
        }
        QJsonValue v;
        const auto t = static_cast<QJsonValue::Type>(type.toInt());
        if (!parseAs(t, item->text(kValueColumn), &v)) {
            if (error != nullptr) {
                const QString expected = t == QJsonValue::Bool ? ConfigDialog::tr("true or false")
                    : t == QJsonValue::Double                  ? ConfigDialog::tr("a number")
                                                               : ConfigDialog::tr("JSON");
                *error = ConfigDialog::tr("%1: '%2' is not %3").arg(pathOf(item), item->text(kValueColumn), expected);
            }
            return false;
        }
        out->insert(key, v);
    }
    return true;
}

} // namespace

ConfigDialog::ConfigDialog(const QString& json, const QString& defaultsJson, Validator validate, QWidget* parent)
    : QDialog(parent)
    , m_validate(std::move(validate))
{
    setWindowTitle(tr("All training settings"));
    resize(620, 640);
    auto* layout = new QVBoxLayout(this);
    auto* hint = new QLabel(tr("Every setting of the run (the form's fields included). Double-click a value to edit it; "
                               "OK checks the settings with the engine."),
        this);
    hint->setWordWrap(true);
    layout->addWidget(hint);
    m_tree = new QTreeWidget(this);
    m_tree->setObjectName(QStringLiteral("settingsTree"));
    m_tree->setColumnCount(3);
    m_tree->setHeaderLabels({ tr("Setting"), tr("Value"), tr("Default") });
    m_tree->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed
        | QAbstractItemView::SelectedClicked);
    m_tree->setUniformRowHeights(true);
    addObject(nullptr, m_tree, QJsonDocument::fromJson(json.toUtf8()).object(),
        QJsonDocument::fromJson(defaultsJson.toUtf8()).object());
    m_tree->expandAll();
    m_tree->header()->setSectionResizeMode(kKeyColumn, QHeaderView::ResizeToContents);
    m_tree->header()->setSectionResizeMode(kValueColumn, QHeaderView::Stretch);
    layout->addWidget(m_tree, 1);
    m_error = new QLabel(this);
    m_error->setObjectName(QStringLiteral("settingsError"));
    m_error->setWordWrap(true);
    m_error->setStyleSheet(QStringLiteral("color: #c0392b"));
    m_error->hide();
    layout->addWidget(m_error);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    connect(buttons, &QDialogButtonBox::accepted, this, &ConfigDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &ConfigDialog::reject);
    layout->addWidget(buttons);
}

ConfigDialog::~ConfigDialog() = default;

QString ConfigDialog::json(QString* error) const
{
    QJsonObject root;
    QString err;
    if (!readObject(nullptr, m_tree, &root, &err)) {
        if (error != nullptr) {
            *error = err;
        }
        return {};
    }
    return QString::fromUtf8(QJsonDocument(root).toJson(QJsonDocument::Indented));
}

QTreeWidgetItem* ConfigDialog::find(const QString& path) const
{
    const QStringList parts = path.split(QLatin1Char('.'));
    QTreeWidgetItem* item = nullptr;
    for (const QString& part : parts) {
        const int n = item != nullptr ? item->childCount() : m_tree->topLevelItemCount();
        QTreeWidgetItem* next = nullptr;
        for (int k = 0; k < n && next == nullptr; ++k) {
            QTreeWidgetItem* c = item != nullptr ? item->child(k) : m_tree->topLevelItem(k);
            if (c->text(kKeyColumn) == part) {
                next = c;
            }
        }
        if (next == nullptr) {
            return nullptr;
        }
        item = next;
    }
    return item != nullptr && item->childCount() == 0 ? item : nullptr;
}

bool ConfigDialog::setValueText(const QString& path, const QString& text)
{
    QTreeWidgetItem* item = find(path);
    if (item == nullptr) {
        return false;
    }
    item->setText(kValueColumn, text);
    return true;
}

QString ConfigDialog::valueText(const QString& path) const
{
    const QTreeWidgetItem* item = find(path);
    return item != nullptr ? item->text(kValueColumn) : QString();
}

QString ConfigDialog::errorText() const
{
    return m_error->isVisible() || !m_error->text().isEmpty() ? m_error->text() : QString();
}

void ConfigDialog::accept()
{
    QString error;
    const QString text = json(&error);
    if (error.isEmpty() && m_validate) {
        error = m_validate(text);
    }
    if (!error.isEmpty()) {
        m_error->setText(error);
        m_error->show();
        return;
    }
    m_error->clear();
    m_error->hide();
    QDialog::accept();
}

} // namespace wfm::gui
