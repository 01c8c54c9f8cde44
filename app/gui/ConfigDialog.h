#pragma once

#include <QDialog>
#include <QString>

#include <functional>

class QLabel;
class QTreeWidget;
class QTreeWidgetItem;

namespace wfm::gui {

/// Training > All settings…: every setting of a training config as an editable tree (section,
/// key, value, engine default). Values are edited as text and read back with the type the setting
/// had (number, true/false, text; lists and objects as JSON). OK checks the result with
/// `validate` (returns "" or the engine's error, which names the section.key) and stays open
/// with the error shown until the settings are valid.
class ConfigDialog : public QDialog
{
    Q_OBJECT
public:
    using Validator = std::function<QString(const QString& json)>;

    ConfigDialog(const QString& json, const QString& defaultsJson, Validator validate, QWidget* parent = nullptr);
    ~ConfigDialog() override;

    /// The settings as shown (after edits), as JSON text; on a value that does not parse as its
    /// type, "" and `error` says which.
    QString json(QString* error = nullptr) const;
    /// Sets the value text of `section.key` (as a user would type it); false if there is none.
    bool setValueText(const QString& path, const QString& text);
    /// The value text shown for `section.key` ("" if there is none).
    QString valueText(const QString& path) const;
    /// The error shown after a refused OK ("" if none).
    QString errorText() const;

public Q_SLOTS:
    void accept() override;

private:
    QTreeWidgetItem* find(const QString& path) const;

    QTreeWidget* m_tree = nullptr;
    QLabel* m_error = nullptr;
    Validator m_validate;
};

} // namespace wfm::gui
