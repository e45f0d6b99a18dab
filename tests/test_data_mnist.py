"""MNIST loader: the real test set, the search order, offline download via file://."""
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minstn.data import load_dataset
from minstn.data.idx import write_idx
from minstn.data.mnist import (MNIST_FILES, DownloadError, MNISTNotFoundError, download_mnist,
                               find_mnist, load_mnist, md5sum, search_dirs)
from minstn.files import FileFormatError
from strategies import damaged_bytes

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
REAL = Path(os.environ.get("MINSTN_DATA") or SHARED)
needs_real = pytest.mark.skipif(not (REAL / "t10k-images-idx3-ubyte.gz").is_file(),
                                reason=f"real MNIST test set not found in {REAL} (set $MINSTN_DATA)")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test may see the user's cache or $MINSTN_DATA, or reach the network."""
    monkeypatch.delenv("MINSTN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def no_network(url):
        raise AssertionError(f"a test tried to open {url}")
    monkeypatch.setattr("minstn.data.mnist._urlopen", no_network)


@needs_real
def test_real_test_set():
    for name, md5 in MNIST_FILES["test"]:
        assert md5sum(REAL / (name + ".gz")) == md5
    images, labels = load_mnist("test", data_dir=REAL, download=False)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.shape == (10000,)
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert images.max() == 255 and images.min() == 0


def _tiny_split(folder: Path, split="test", n=5, gz=True, n_labels=None):
    folder.mkdir(parents=True, exist_ok=True)
    (img, _), (lab, _) = MNIST_FILES[split]
    suffix = ".gz" if gz else ""
    x = np.arange(n * 28 * 28, dtype=np.uint8).reshape(n, 28, 28)
    y = np.arange(n_labels or n, dtype=np.uint8) % 10
    write_idx(folder / (img + suffix), x)
    write_idx(folder / (lab + suffix), y)
    return x, y


@pytest.mark.parametrize("gz", [True, False])
def test_loads_from_data_dir_any_idx_dataset(tmp_path, gz):
    x, y = _tiny_split(tmp_path / "fashion", gz=gz)  # e.g. Fashion-MNIST: same names, other MD5s
    images, labels = load_mnist("test", data_dir=tmp_path / "fashion", download=False)
    np.testing.assert_array_equal(images, x)
    assert labels.dtype == np.int64 and labels.tolist() == y.tolist()


def test_search_order(tmp_path, monkeypatch):
    monkeypatch.setenv("MINSTN_DATA", str(tmp_path / "env"))
    assert search_dirs(tmp_path / "mine") == [tmp_path / "mine", tmp_path / "env",
                                              tmp_path / "cache" / "minstn" / "mnist"]
    _tiny_split(tmp_path / "cache" / "minstn" / "mnist")
    assert find_mnist(tmp_path / "mine", "test") == tmp_path / "cache" / "minstn" / "mnist"
    _tiny_split(tmp_path / "env")
    assert find_mnist(tmp_path / "mine", "test") == tmp_path / "env"
    assert find_mnist(tmp_path / "mine", "train") is None


def test_not_found_names_folders_and_files(tmp_path):
    with pytest.raises(MNISTNotFoundError) as info:
        load_mnist("train", data_dir=tmp_path / "nowhere", download=False)
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(tmp_path / "nowhere") in msg and str(tmp_path / "cache" / "minstn" / "mnist") in msg
    assert "train-images-idx3-ubyte" in msg and "train-labels-idx1-ubyte" in msg


def test_count_mismatch(tmp_path):
    _tiny_split(tmp_path, n=5, n_labels=4)
    with pytest.raises(ValueError, match="5 images but .* 4 labels"):
        load_mnist("test", data_dir=tmp_path, download=False)


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), gz=st.booleans(), damage_labels=st.booleans())
def test_fuzz_loaded_exactly_or_refused_by_name(tmp_path_factory, data, gz, damage_labels):
    """One of the two files cut short or with one byte changed. A cut is always refused;
    so is a changed byte, except where no check can see it: a gzip field gzip does not
    check (the load is then exact), and the body of a raw file, which has no checksum
    (then exactly that one pixel or label differs; a download's MD5 is what guards it)."""
    folder = tmp_path_factory.mktemp("mnist")
    x, y = _tiny_split(folder, n=3, gz=gz)
    (images_name, _), (labels_name, _) = MNIST_FILES["test"]
    path = folder / ((labels_name if damage_labels else images_name) + (".gz" if gz else ""))
    bad, at, value = data.draw(damaged_bytes(path.read_bytes()))
    path.write_bytes(bad)
    try:
        images, labels = load_mnist("test", data_dir=folder, download=False)
    except FileFormatError as err:
        assert str(path) in str(err)
        return
    assert value is not None, "a cut file was loaded"
    header = 4 + 4 * (1 if damage_labels else 3)
    if not gz and at >= header:  # the raw body: exactly the changed element differs
        (y if damage_labels else x).reshape(-1)[at - header] = value
    np.testing.assert_array_equal(images, x)
    np.testing.assert_array_equal(labels, y)


def test_bad_split(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation", data_dir=tmp_path, download=False)


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A file:// mirror holding gzip files whose MD5s are declared official."""
    src = tmp_path / "mirror"
    _tiny_split(src, "test", n=3)
    fake = {"test": tuple((name, md5sum(src / (name + ".gz"))) for name, _ in MNIST_FILES["test"])}
    monkeypatch.setattr("minstn.data.mnist.MNIST_FILES", {**MNIST_FILES, **fake})
    return src


def test_download_from_file_mirror(tmp_path, mirror):
    dead = (tmp_path / "dead").as_uri()  # first mirror fails: the next one is tried
    dest = tmp_path / "data"
    images, labels = load_mnist("test", data_dir=dest, download=True,
                                mirrors=[dead, mirror.as_uri()], opener=_file_opener)
    assert images.shape == (3, 28, 28) and labels.tolist() == [0, 1, 2]
    assert sorted(p.name for p in dest.iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_md5_mismatch_leaves_nothing(tmp_path, mirror):
    corrupt = tmp_path / "corrupt"
    _tiny_split(corrupt, "test", n=4)  # same names, different bytes
    dest = tmp_path / "data"
    with pytest.raises(DownloadError, match="MD5"):
        download_mnist(dest, "test", mirrors=[corrupt.as_uri()], opener=_file_opener)
    assert list(dest.iterdir()) == []
    with pytest.raises(MNISTNotFoundError, match="Download failed"):
        load_mnist("test", data_dir=dest, download=True, mirrors=[corrupt.as_uri()], opener=_file_opener)
    assert list(dest.iterdir()) == []


def test_offline_opener_error_is_not_found(tmp_path):
    def offline(url):
        raise OSError("network unreachable")
    with pytest.raises(MNISTNotFoundError, match="network unreachable"):
        load_mnist("test", data_dir=tmp_path / "d", download=True, mirrors=["https://example.invalid/"],
                   opener=offline)


def test_load_dataset_dispatch(tmp_path):
    _tiny_split(tmp_path, n=2)
    assert load_dataset("mnist", "test", data_dir=tmp_path)[0].shape == (2, 28, 28)
    x, y = load_dataset("glyphs", "test", n=20, seed=1)
    assert x.shape == (20, 28, 28) and y.shape == (20,)
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("cifar")


def _file_opener(url):
    import urllib.request
    return urllib.request.urlopen(url)
