#include "ExportDialog.h"

#include <QCheckBox>
#include <QDialogButtonBox>
#include <QFormLayout>
#include <QSpinBox>

namespace wfm {

ExportDialog::ExportDialog(QSize initialSize, QWidget* parent)
    : QDialog(parent)
{
    setWindowTitle(tr("Export screenshot"));
    auto* form = new QFormLayout(this);
    m_width = new QSpinBox(this);
    m_height = new QSpinBox(this);
    for (QSpinBox* box : { m_width, m_height }) {
        box->setRange(16, 16384);
        box->setSuffix(tr(" px"));
    }
    m_width->setValue(initialSize.width());
    m_height->setValue(initialSize.height());
    m_transparent = new QCheckBox(tr("Transparent background"), this);
    form->addRow(tr("Width:"), m_width);
    form->addRow(tr("Height:"), m_height);
    form->addRow(QString(), m_transparent);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    form->addRow(buttons);
}

QSize ExportDialog::imageSize() const
{
    return { m_width->value(), m_height->value() };
}

bool ExportDialog::transparent() const
{
    return m_transparent->isChecked();
}

} // namespace wfm
