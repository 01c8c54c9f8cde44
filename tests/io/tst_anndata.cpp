#include "wfm/Error.h"
#include "wfm/data/DataSpec.h"
#include "wfm/data/Niches.h"
#include "wfm/data/Npy.h"
#include "wfm/io/AnnData.h"
#include "wfm/io/Readers.h"

#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include "TestSupport.h"

#include <torch/torch.h>

#include <fstream>

using namespace wfm;

namespace {

constexpr double kValueTolerance = 1e-5;

/// Writes every fixture with h5py (and anndata when installed) from one random data set, plus
/// the reference arrays: ref_X.npy, ref_spatial.npy, ref_pca.npy, ref_types.txt, ref_genes.txt.
const char* kFixtures = R"PY(
import numpy as np, h5py, os
rng = np.random.default_rng(4)
C, G = 120, 30
X = rng.poisson(2.0, size=(C, G)).astype(np.float32)
X[X < 2] = 0
types = np.array(['T cell', 'B cell', 'neuron', 'glia'])
codes = rng.integers(0, 4, size=C).astype(np.int8)
slices = np.where(np.arange(C) < 70, 'slice_a', 'slice_b')
spatial = rng.uniform(0, 100, size=(C, 2))
pca = rng.normal(size=(C, 5)).astype(np.float32)
obs_names = np.array(['cell%d' % i for i in range(C)])
genes = np.array(['gene%d' % i for i in range(G)])
np.save('ref_X.npy', X); np.save('ref_spatial.npy', spatial); np.save('ref_pca.npy', pca)
open('ref_types.txt', 'w').write('\n'.join(types[codes]) + '\n')
open('ref_genes.txt', 'w').write('\n'.join(genes) + '\n')
vstr = h5py.string_dtype('utf-8')

def csr(m):
    indptr = [0]; indices = []; data = []
    for row in m:
        nz = np.nonzero(row)[0]
        indices.extend(nz); data.extend(row[nz]); indptr.append(len(indices))
    return np.array(data), np.array(indices, dtype=np.int32), np.array(indptr, dtype=np.int64)

def attrs(o, enc, ver='0.1.0'):
    o.attrs['encoding-type'] = enc; o.attrs['encoding-version'] = ver

def new_df(f, name, index, cols):
    g = f.create_group(name); attrs(g, 'dataframe', '0.2.0')
    g.attrs['_index'] = '_index'
    g.attrs['column-order'] = np.array(list(cols.keys()), dtype=object) if cols else np.array([], dtype=np.float64)
    d = g.create_dataset('_index', data=index.astype(object), dtype=vstr); attrs(d, 'string-array', '0.2.0')
    for k, v in cols.items():
        v(g, k)
    return g

def cat_col(g, k):
    c = g.create_group(k); attrs(c, 'categorical', '0.2.0'); c.attrs['ordered'] = False
    c.create_dataset('categories', data=types.astype(object), dtype=vstr)
    c.create_dataset('codes', data=codes)

def str_col(g, k):
    d = g.create_dataset(k, data=slices.astype(object), dtype=vstr); attrs(d, 'string-array', '0.2.0')

def num_col(g, k):
    g.create_dataset(k, data=np.arange(C) * 0.5)

def bool_col(g, k):
    g.create_dataset(k, data=(np.arange(C) % 2 == 0))

def new_file(path, xwriter, obs_cols=None, obsm=True):
    with h5py.File(path, 'w') as f:
        attrs(f, 'anndata')
        xwriter(f)
        new_df(f, 'obs', obs_names, obs_cols if obs_cols is not None else
               {'cell_type': cat_col, 'slice': str_col, 'score': num_col, 'flag': bool_col})
        new_df(f, 'var', genes, {})
        if obsm:
            m = f.create_group('obsm'); attrs(m, 'dict')
            m.create_dataset('spatial', data=spatial); m.create_dataset('X_pca', data=pca)

def dense(dtype):
    return lambda f: f.create_dataset('X', data=X.astype(dtype))

def sparse(kind, dtype):
    def w(f):
        m = X if kind == 'csr' else X.T
        data, indices, indptr = csr(m)
        g = f.create_group('X'); attrs(g, kind + '_matrix'); g.attrs['shape'] = np.array([C, G])
        g.create_dataset('data', data=data.astype(dtype)); g.create_dataset('indices', data=indices)
        g.create_dataset('indptr', data=indptr)
    return w

new_file('new_dense_f32.h5ad', dense(np.float32))
new_file('new_dense_f64.h5ad', dense(np.float64))
new_file('new_dense_int.h5ad', dense(np.int32))
new_file('new_csr_int.h5ad', sparse('csr', np.int64))
new_file('new_csc_f64.h5ad', sparse('csc', np.float64))

# anndata 0.7: obs group, categoricals as codes + obs/__categories/<col>, h5sparse attributes,
# fixed-length byte strings, an obsm array stored transposed.
with h5py.File('old07.h5ad', 'w') as f:
    data, indices, indptr = csr(X)
    g = f.create_group('X'); g.attrs['h5sparse_format'] = 'csr'; g.attrs['h5sparse_shape'] = np.array([C, G])
    g.create_dataset('data', data=data.astype(np.float32)); g.create_dataset('indices', data=indices)
    g.create_dataset('indptr', data=indptr)
    o = f.create_group('obs'); o.attrs['_index'] = 'index'
    o.attrs['column-order'] = np.array(['cell_type', 'slice', 'score'], dtype='S')
    o.create_dataset('index', data=obs_names.astype('S'))
    o.create_dataset('cell_type', data=codes)
    o.create_dataset('slice', data=slices.astype('S'))
    o.create_dataset('score', data=np.arange(C) * 0.5)
    o.create_dataset('__categories/cell_type', data=types.astype('S'))
    v = f.create_group('var'); v.attrs['_index'] = 'index'; v.attrs['column-order'] = np.array([], dtype=np.float64)
    v.create_dataset('index', data=genes.astype('S'))
    m = f.create_group('obsm'); m.create_dataset('spatial', data=spatial.T.copy()); m.create_dataset('X_pca', data=pca)

# anndata <= 0.6: compound obs / var / obsm datasets, categories in uns/<col>_categories.
with h5py.File('legacy_compound.h5ad', 'w') as f:
    f.create_dataset('X', data=X.astype(np.int64))
    obs = np.zeros(C, dtype=[('index', 'S10'), ('cell_type', 'i1'), ('slice', 'S8'), ('score', 'f8')])
    obs['index'] = obs_names.astype('S'); obs['cell_type'] = codes; obs['slice'] = slices.astype('S'); obs['score'] = np.arange(C) * 0.5
    f.create_dataset('obs', data=obs)
    var = np.zeros(G, dtype=[('index', 'S10')]); var['index'] = genes.astype('S')
    f.create_dataset('var', data=var)
    obsm = np.zeros(C, dtype=[('spatial', 'f8', (2,)), ('X_pca', 'f4', (5,))])
    obsm['spatial'] = spatial; obsm['X_pca'] = pca
    f.create_dataset('obsm', data=obsm)
    f.create_dataset('uns/cell_type_categories', data=types.astype('S'))

# Broken files.
new_file('missing_x.h5ad', lambda f: None)
new_file('mismatch.h5ad', lambda f: f.create_dataset('X', data=X[:100]))
def bad_indptr(f):
    sparse('csr', np.float32)(f); p = f['X/indptr'][...]; p[5] = p[6] + 1
    del f['X/indptr']; f['X'].create_dataset('indptr', data=p)
new_file('bad_indptr.h5ad', bad_indptr)
def bad_index(f):
    sparse('csr', np.float32)(f); i = f['X/indices'][...]; i[3] = G + 7
    del f['X/indices']; f['X'].create_dataset('indices', data=i)
new_file('bad_index.h5ad', bad_index)
def nan_x(f):
    y = X.copy(); y[4, 2] = np.nan; f.create_dataset('X', data=y)
new_file('nan_x.h5ad', nan_x)
def bad_codes_col(g, k):
    cat_col(g, k); c = g[k + '/codes'][...]; c[9] = 7
    del g[k + '/codes']; g[k].create_dataset('codes', data=c)
new_file('bad_codes.h5ad', dense(np.float32), {'cell_type': bad_codes_col, 'slice': str_col})
def nan_obsm(path):
    with h5py.File(path, 'a') as f:
        s = f['obsm/spatial'][...]; s[3, 1] = np.nan; del f['obsm/spatial']; f['obsm'].create_dataset('spatial', data=s)
new_file('nan_obsm.h5ad', dense(np.float32)); nan_obsm('nan_obsm.h5ad')
open('not_hdf5.h5ad', 'w').write('hello')

# The real library, when installed.
try:
    import anndata, pandas as pd, scipy.sparse as sp
    obs = pd.DataFrame({'cell_type': pd.Categorical(types[codes], categories=types), 'slice': slices}, index=obs_names)
    var = pd.DataFrame(index=genes)
    ad = anndata.AnnData(X=sp.csr_matrix(X), obs=obs, var=var, obsm={'spatial': spatial, 'X_pca': pca})
    ad.write_h5ad('anndata_lib.h5ad')
    print('anndata', anndata.__version__)
except ImportError as e:
    print('no anndata:', e)
)PY";

std::vector<std::string> readLines(const QString& path)
{
    std::ifstream in(path.toStdString());
    std::vector<std::string> out;
    std::string line;
    while (std::getline(in, line)) {
        out.push_back(line);
    }
    return out;
}

} // namespace

class TestAnnData : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void readsLayouts_data();
    void readsLayouts();
    void nicheScheme();
    void errors_data();
    void errors();
    void describesReader();

private:
    QTemporaryDir m_dir;
    bool m_haveAnndata = false;
    QString file(const char* name) const { return m_dir.path() + QLatin1Char('/') + QLatin1String(name); }
};

void TestAnnData::initTestCase()
{
    QVERIFY(m_dir.isValid());
    QString log;
    const int rc = test::runPython(m_dir.path(), QString::fromUtf8(kFixtures), log);
    if (rc != 0 && log.contains(QStringLiteral("No module named 'h5py'"))) {
        QSKIP("python3-h5py is not installed (scripts/setup installs it)");
    }
    QVERIFY2(rc == 0, qPrintable(log));
    m_haveAnndata = QFile::exists(file("anndata_lib.h5ad"));
    io::registerReaders();
}

void TestAnnData::readsLayouts_data()
{
    QTest::addColumn<QString>("name");
    QTest::addColumn<QString>("layout");
    QTest::newRow("dense float32") << "new_dense_f32.h5ad" << "anndata 0.8+";
    QTest::newRow("dense float64") << "new_dense_f64.h5ad" << "anndata 0.8+";
    QTest::newRow("dense int32") << "new_dense_int.h5ad" << "anndata 0.8+";
    QTest::newRow("csr int64") << "new_csr_int.h5ad" << "anndata 0.8+";
    QTest::newRow("csc float64") << "new_csc_f64.h5ad" << "anndata 0.8+";
    QTest::newRow("anndata 0.7") << "old07.h5ad" << "anndata 0.7";
    QTest::newRow("compound legacy") << "legacy_compound.h5ad" << "legacy";
    QTest::newRow("anndata library") << "anndata_lib.h5ad" << "anndata 0.8+";
}

void TestAnnData::readsLayouts()
{
    QFETCH(QString, name);
    QFETCH(QString, layout);
    if (name == QLatin1String("anndata_lib.h5ad") && !m_haveAnndata) {
        QSKIP("python3-anndata is not installed");
    }
    const io::AnnData ad = io::readAnnData(file(qPrintable(name)).toStdString());
    QCOMPARE(QString::fromStdString(ad.layout), layout);
    QCOMPARE(ad.nObs, std::int64_t { 120 });
    QCOMPARE(ad.nVars, std::int64_t { 30 });
    const torch::Tensor refX = data::readNpy(file("ref_X.npy").toStdString());
    QVERIFY(torch::allclose(ad.X, refX, kValueTolerance, kValueTolerance));
    QCOMPARE(ad.obsNames.front(), std::string("cell0"));
    QCOMPARE(ad.obsNames.back(), std::string("cell119"));
    QCOMPARE(ad.varNames, readLines(file("ref_genes.txt")));
    QVERIFY(ad.obs.count("cell_type") == 1);
    const io::AnnDataColumn& ct = ad.obs.at("cell_type");
    QVERIFY(ct.kind == io::AnnDataColumn::Kind::Categorical);
    QCOMPARE(ct.categories, (std::vector<std::string> { "T cell", "B cell", "neuron", "glia" }));
    QCOMPARE(ct.asText(), readLines(file("ref_types.txt")));
    QCOMPARE(ad.obs.at("slice").asText()[0], std::string("slice_a"));
    QCOMPARE(ad.obs.at("slice").asText()[119], std::string("slice_b"));
    if (ad.obs.count("score")) {
        QCOMPARE(ad.obs.at("score").numbers[3], 1.5);
    }
    if (ad.obs.count("flag")) {
        QCOMPARE(ad.obs.at("flag").numbers[0], 1.0);
        QCOMPARE(ad.obs.at("flag").numbers[1], 0.0);
    }
    const torch::Tensor spatial = data::readNpy(file("ref_spatial.npy").toStdString()).to(torch::kFloat);
    QVERIFY(torch::allclose(ad.obsm.at("spatial"), spatial, kValueTolerance, kValueTolerance));
    const torch::Tensor pca = data::readNpy(file("ref_pca.npy").toStdString());
    QVERIFY(torch::allclose(ad.obsm.at("X_pca"), pca, kValueTolerance, kValueTolerance));
}

void TestAnnData::nicheScheme()
{
    // The same niches from every layout, and equal to buildNiches on the reference arrays.
    data::CellTable cells;
    cells.positions = data::readNpy(file("ref_spatial.npy").toStdString()).to(torch::kFloat);
    cells.representations["X_pca"] = data::readNpy(file("ref_pca.npy").toStdString());
    cells.expression = data::readNpy(file("ref_X.npy").toStdString());
    const auto typeText = readLines(file("ref_types.txt"));
    cells.typeNames = { "T cell", "B cell", "neuron", "glia" };
    std::vector<std::int64_t> typeIds;
    for (const std::string& t : typeText) {
        typeIds.push_back(std::find(cells.typeNames.begin(), cells.typeNames.end(), t) - cells.typeNames.begin());
    }
    cells.cellTypes = torch::tensor(typeIds, torch::kLong);
    cells.sections = (torch::arange(120) >= 70).to(torch::kLong);
    cells.sectionNames = { "slice_a", "slice_b" };
    data::NicheOptions no;
    no.k = 5;
    no.rep = "X_pca";
    const data::NicheSet ref = data::buildNiches(cells, no, "ref");
    for (const char* name : { "new_dense_f32.h5ad", "new_csr_int.h5ad", "old07.h5ad", "legacy_compound.h5ad" }) {
        const data::PointCloudDataset d = data::loadPointClouds(
            "h5ad:" + file(name).toStdString() + "?k=5&rep=X_pca&label=cell_type&section=slice");
        QCOMPARE(d.count(), std::int64_t { 120 });
        QCOMPARE(d.dim(), std::int64_t { 5 });
        QCOMPARE(d.labelNames, cells.typeNames);
        QVERIFY2(torch::allclose(d.points, ref.data.points, kValueTolerance, kValueTolerance), name);
        QVERIFY(torch::equal(d.labels, ref.data.labels));
    }
    // PCA computed by the engine from X, restricted centres.
    no.rep = "pca";
    no.pcs = 4;
    no.centers = { "neuron" };
    const data::NicheSet refPca = data::buildNiches(cells, no, "ref");
    const data::PointCloudDataset d = data::loadPointClouds("h5ad:" + file("new_csc_f64.h5ad").toStdString()
        + "?k=5&pcs=4&section=slice&centers=neuron");
    QVERIFY(torch::allclose(d.points, refPca.data.points, 1e-4, 1e-4));
    QVERIFY((d.labels == 2).all().item<bool>());
    EXPECT_THROW_MSG(ConfigError, data::loadPointClouds("h5ad:" + file("new_dense_f32.h5ad").toStdString() + "?label=kind"),
        "label=kind", "no such obs column", "cell_type");
    EXPECT_THROW_MSG(DatasetError, data::loadPointClouds("h5ad:" + file("new_dense_f32.h5ad").toStdString() + "?rep=X_umap"),
        "/obsm/X_umap", "missing");
    EXPECT_THROW_MSG(ConfigError, data::loadPointClouds("h5ad:" + file("new_dense_f32.h5ad").toStdString() + "?radius=2"),
        "unknown option 'radius'");
}

void TestAnnData::errors_data()
{
    QTest::addColumn<QString>("name");
    QTest::addColumn<QString>("field");
    QTest::addColumn<QString>("problem");
    QTest::newRow("missing X") << "missing_x.h5ad" << "/X" << "missing";
    QTest::newRow("mismatched shapes") << "mismatch.h5ad" << "/X" << "has 100 rows but obs has 120 cells";
    QTest::newRow("bad indptr") << "bad_indptr.h5ad" << "/X/indptr" << "decreases";
    QTest::newRow("index out of range") << "bad_index.h5ad" << "/X/indices" << "index 37";
    QTest::newRow("NaN in X") << "nan_x.h5ad" << "/X" << "non-finite value (NaN or inf) at row 4, column 2";
    QTest::newRow("bad codes") << "bad_codes.h5ad" << "/obs/cell_type/codes" << "code 7 at row 9 out of range";
    QTest::newRow("NaN in obsm") << "nan_obsm.h5ad" << "/obsm/spatial" << "row 3";
    QTest::newRow("not HDF5") << "not_hdf5.h5ad" << "not_hdf5.h5ad" << "not an HDF5 file";
    QTest::newRow("no file") << "absent.h5ad" << "absent.h5ad" << "no such file";
}

void TestAnnData::errors()
{
    QFETCH(QString, name);
    QFETCH(QString, field);
    QFETCH(QString, problem);
    const std::string path = file(qPrintable(name)).toStdString();
    EXPECT_THROW_MSG(DatasetError, io::readAnnData(path), path, field.toStdString(), problem.toStdString());
}

void TestAnnData::describesReader()
{
    const auto readers = io::availableReaders();
    QVERIFY(std::any_of(readers.begin(), readers.end(),
        [](const std::string& r) { return r.rfind("h5ad (HDF5 1.", 0) == 0; }));
    QVERIFY(data::dataSchemes().count("h5ad") == 1);
}

QTEST_GUILESS_MAIN(TestAnnData)
#include "tst_anndata.moc"
