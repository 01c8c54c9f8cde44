#pragma once

#include <QDialog>
#include <QSize>

class QCheckBox;
class QSpinBox;

namespace wfm {

/// Asks for the pixel size of an exported screenshot and whether its background is transparent.
class ExportDialog : public QDialog
{
    Q_OBJECT
public:
    /// `initialSize` preselects the size (usually the view's pixel size).
    explicit ExportDialog(QSize initialSize, QWidget* parent = nullptr);

    QSize imageSize() const;
    bool transparent() const;

private:
    QSpinBox* m_width = nullptr;
    QSpinBox* m_height = nullptr;
    QCheckBox* m_transparent = nullptr;
};

} // namespace wfm
