"""MNIST / Fashion-MNIST loading (tinygrad_cnn.data) against the real files, damaged copies of
them, a local HTTP mirror on 127.0.0.1, and the DataLoader's batching and reproducibility.

The real files live in ``../shared/data`` (read-only): every test that writes works on copies in
``tmp_path``. Expected numbers come from shared/data/README.md.
"""
from __future__ import annotations

import functools
import re
import gzip
import hashlib
import http.server
import shutil
import socket
import socketserver
import threading
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn import Tensor, io
from tinygrad_cnn.data import FILES, SHA256, DataLoader, DatasetError, mnist, read_idx
from tinygrad_cnn import data as data_module

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801
TEST_IMAGES, TEST_LABELS = FILES["test"]

# From shared/data/README.md.
EXPECTED = {
    "mnist": {"mean": 33.791, "first": [7, 2, 1, 0, 4, 1, 4, 9, 5, 9],
              "counts": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]},
    "fashion-mnist": {"mean": 73.147, "first": [9, 2, 1, 1, 6, 1, 4, 6, 5, 7], "counts": [1000] * 10},
}
MNIST_TRAIN = {"mean": 33.318, "first": [5, 0, 4, 1, 9, 2, 1, 3, 1, 4],
               "counts": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]}


def dataset_dir(name: str) -> Path:
    folder = SHARED_DATA / name
    needed = [folder / f for f in FILES["test"]]
    if not all(p.is_file() for p in needed):
        pytest.skip(f"the real {name} files are not in {folder} (see shared/data/README.md)")
    return folder


@pytest.fixture(scope="module")
def mnist_test():
    """The real MNIST test split, parsed once (download=False: nothing is written)."""
    return mnist(root=dataset_dir("mnist"), split="test", download=False)


def idx_gz(path: Path, magic: int, shape: tuple[int, ...], body: bytes | None = None, **gzip_args) -> Path:
    """Write a gzip-compressed IDX file: big-endian magic, one uint32 per axis, then `body`."""
    if body is None:
        body = bytes(int(np.prod(shape)))
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape)
    path.write_bytes(gzip.compress(header + body, **gzip_args))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def contents(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---- the real files ---------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_real_checksums_match_the_published_ones(dataset):
    folder = dataset_dir(dataset)
    listed = dict(line.split()[::-1] for line in (folder / "SHA256SUMS").read_text().splitlines() if line)
    assert listed == SHA256[dataset]
    assert set(SHA256[dataset]) == set(FILES["train"]) | set(FILES["test"])


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_real_test_split(dataset, mnist_test):
    folder = dataset_dir(dataset)
    images, labels = mnist_test if dataset == "mnist" else mnist(root=folder, split="test", fashion=True,
                                                                  download=False)
    expected = EXPECTED[dataset]
    assert images.shape == (10000, 1, 28, 28) and images.dtype == np.float32
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    assert labels.tolist()[:10] == expected["first"]
    assert np.bincount(labels, minlength=10).tolist() == expected["counts"]
    assert images.astype(np.float64).mean() * 255 == pytest.approx(expected["mean"], abs=5e-4)
    # Exactly the IDX bytes divided by 255.
    raw = read_idx(folder / TEST_IMAGES, IMAGE_MAGIC)
    assert raw.shape == (10000, 28, 28) and raw.dtype == np.uint8
    np.testing.assert_array_equal(images[:, 0], raw.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(labels, read_idx(folder / TEST_LABELS, LABEL_MAGIC))


def test_real_mnist_train_split():
    folder = dataset_dir("mnist")
    if not all((folder / f).is_file() for f in FILES["train"]):
        pytest.skip(f"the MNIST train files are not in {folder}")
    images, labels = mnist(root=folder, split="train", download=False)
    assert images.shape == (60000, 1, 28, 28) and images.dtype == np.float32
    assert labels.shape == (60000,) and labels.dtype == np.int64
    assert labels.tolist()[:10] == MNIST_TRAIN["first"]
    assert np.bincount(labels, minlength=10).tolist() == MNIST_TRAIN["counts"]
    assert images.astype(np.float64).mean() * 255 == pytest.approx(MNIST_TRAIN["mean"], abs=5e-4)


def test_unknown_split_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        mnist(root=tmp_path, split="validation", download=False)


# ---- damaged files ----------------------------------------------------------------------------
def test_read_idx_of_a_well_formed_file(tmp_path):
    body = bytes(range(24))
    array = read_idx(idx_gz(tmp_path / "x.gz", IMAGE_MAGIC, (2, 3, 4), body), IMAGE_MAGIC)
    assert array.shape == (2, 3, 4) and array.dtype == np.uint8
    assert array.ravel().tolist() == list(range(24))


@pytest.mark.parametrize("content", [b"", b"garbage bytes, not gzip" * 20, b"\x1f\x8b" + bytes(40)])
def test_not_gzip(tmp_path, content):
    path = tmp_path / "bad.gz"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=r"bad\.gz: (not a valid gzip file|truncated)"):
        read_idx(path, LABEL_MAGIC)


def test_damaged_gzip_stream(tmp_path):
    good = idx_gz(tmp_path / "good.gz", LABEL_MAGIC, (3000,), bytes(i % 10 for i in range(3000)))
    assert read_idx(good, LABEL_MAGIC).shape == (3000,)
    data = good.read_bytes()
    (tmp_path / "cut.gz").write_bytes(data[: len(data) // 2])  # compressed stream cut short
    flipped = bytearray(data)
    flipped[-6] ^= 0xFF  # inside the CRC-32 trailer
    (tmp_path / "crc.gz").write_bytes(bytes(flipped))
    for name in ("cut.gz", "crc.gz"):
        with pytest.raises(DatasetError, match=rf"{name}: not a valid gzip file"):
            read_idx(tmp_path / name, LABEL_MAGIC)


def test_wrong_magic_number(tmp_path):
    labels = idx_gz(tmp_path / "labels.gz", LABEL_MAGIC, (20,))
    with pytest.raises(DatasetError, match=r"IDX magic number 0x00000801, expected 0x00000803"):
        read_idx(labels, IMAGE_MAGIC)
    wrong_type = idx_gz(tmp_path / "int32.gz", 0x00000C01, (5,), bytes(20))  # int32 data type code
    with pytest.raises(DatasetError, match=r"magic number 0x00000c01, expected 0x00000801"):
        read_idx(wrong_type, LABEL_MAGIC)


@pytest.mark.parametrize("shape, body, pattern", [
    ((10,), bytes(5), r"truncated: header says shape \(10,\) \(10 bytes\), found 5 bytes"),
    ((2, 28, 28), bytes(2 * 784 - 1), r"truncated: header says shape \(2, 28, 28\) \(1568 bytes\), found 1567"),
    ((10,), bytes(11), r"trailing data: header says shape \(10,\) \(10 bytes\), found 11 bytes"),
])
def test_body_length_must_match_the_header(tmp_path, shape, body, pattern):
    magic = IMAGE_MAGIC if len(shape) == 3 else LABEL_MAGIC
    with pytest.raises(DatasetError, match=pattern):
        read_idx(idx_gz(tmp_path / "x.gz", magic, shape, body), magic)


def test_header_cut_short(tmp_path):
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(IMAGE_MAGIC.to_bytes(4, "big") + (10).to_bytes(4, "big")))
    with pytest.raises(DatasetError, match=r"truncated: 8 bytes, the IDX header alone needs 16"):
        read_idx(path, IMAGE_MAGIC)


def test_a_file_that_is_not_the_published_one(tmp_path, mnist_test):
    """A re-gzipped copy holds the same data, but it is not the published file: refused."""
    source = dataset_dir("mnist")
    root = tmp_path / "cache"
    root.mkdir()
    shutil.copyfile(source / TEST_IMAGES, root / TEST_IMAGES)
    raw = gzip.decompress((source / TEST_LABELS).read_bytes())
    (root / TEST_LABELS).write_bytes(gzip.compress(raw, mtime=0))
    np.testing.assert_array_equal(read_idx(root / TEST_LABELS, LABEL_MAGIC), mnist_test[1])
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte\.gz: SHA-256 [0-9a-f]{64} does not "
                                           r"match the published f7ae60f9"):
        mnist(root=root, split="test", download=False)
    assert contents(root) == [TEST_IMAGES, TEST_LABELS]  # nothing deleted behind the user's back


@pytest.mark.parametrize("dataset, fashion", [("mnist", True), ("fashion-mnist", False)])
def test_the_other_data_sets_files_are_recognised_not_called_corrupt(tmp_path, dataset, fashion):
    source = dataset_dir(dataset)
    for name in FILES["test"]:
        shutil.copyfile(source / name, tmp_path / name)
    other = "MNIST" if dataset == "mnist" else "Fashion-MNIST"
    with pytest.raises(DatasetError, match=rf"these are the {other} files: pass fashion={not fashion}"):
        mnist(root=tmp_path, split="test", fashion=fashion, download=False)


def _crafted_split(folder: Path, monkeypatch, n_images: int, n_labels: int, size=(28, 28)) -> None:
    """Small IDX files under the test split's names, registered as the published ones."""
    folder.mkdir(exist_ok=True)
    images = idx_gz(folder / TEST_IMAGES, IMAGE_MAGIC, (n_images, *size),
                    bytes(range(256)) * (n_images * size[0] * size[1] // 256)
                    + bytes(n_images * size[0] * size[1] % 256))
    labels = idx_gz(folder / TEST_LABELS, LABEL_MAGIC, (n_labels,), bytes(i % 10 for i in range(n_labels)))
    monkeypatch.setitem(SHA256["mnist"], TEST_IMAGES, sha256(images))
    monkeypatch.setitem(SHA256["mnist"], TEST_LABELS, sha256(labels))


def test_crafted_split_with_matching_counts_loads(tmp_path, monkeypatch):
    """The control for the next test: the crafting helper itself yields a loadable split."""
    _crafted_split(tmp_path, monkeypatch, 4, 4)
    images, labels = mnist(root=tmp_path, split="test", download=False)
    assert images.shape == (4, 1, 28, 28) and labels.tolist() == [0, 1, 2, 3]
    assert images[0, 0, 0, 1] == np.float32(1 / 255)


@pytest.mark.parametrize("n_images, n_labels, size, pattern", [
    (5, 4, (28, 28), r"5 images of shape \(28, 28\) but 4 labels"),
    (3, 4, (28, 28), r"3 images of shape \(28, 28\) but 4 labels"),
    (4, 4, (28, 27), r"4 images of shape \(28, 27\) but 4 labels; expected \(N, 28, 28\)"),
])
def test_images_and_labels_must_agree(tmp_path, monkeypatch, n_images, n_labels, size, pattern):
    _crafted_split(tmp_path, monkeypatch, n_images, n_labels, size)
    with pytest.raises(DatasetError, match=pattern):
        mnist(root=tmp_path, split="test", download=False)


def test_no_files_and_no_download(tmp_path):
    root = tmp_path / "nothing-here"
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte\.gz does not exist \(and download=False\)"):
        mnist(root=root, split="test", download=False)
    assert not root.exists()


# ---- downloads from a local mirror ------------------------------------------------------------
class Mirror:
    """An HTTP server on 127.0.0.1 serving one folder; it records the path of every request."""

    def __init__(self, folder: Path) -> None:
        requests: list[str] = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server name)
                requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.requests = requests
        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def no_proxy(monkeypatch):
    """Requests to 127.0.0.1 go straight to it, whatever proxy the environment names."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def serve(request, no_proxy):
    """serve(folder) -> a running Mirror, shut down when the test ends."""
    def start(folder: Path) -> Mirror:
        mirror = Mirror(folder)
        request.addfinalizer(mirror.close)
        return mirror
    return start


@pytest.fixture
def served_mnist(tmp_path):
    """A folder with copies of the real MNIST test files, to be served."""
    source = dataset_dir("mnist")
    folder = tmp_path / "served"
    folder.mkdir()
    for name in FILES["test"]:
        shutil.copyfile(source / name, folder / name)
    return folder


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WANTED = ["/" + TEST_IMAGES, "/" + TEST_LABELS]


def test_download_verifies_and_caches(tmp_path, serve, served_mnist, mnist_test):
    mirror = serve(served_mnist)
    cache = tmp_path / "cache" / "mnist"  # does not exist yet
    images, labels = mnist(root=cache, split="test", mirrors=[mirror.url], timeout=10)
    assert mirror.requests == WANTED
    np.testing.assert_array_equal(images, mnist_test[0])
    np.testing.assert_array_equal(labels, mnist_test[1])
    assert contents(cache) == sorted(FILES["test"])  # no partial or temporary files
    for name in FILES["test"]:
        assert sha256(cache / name) == SHA256["mnist"][name]

    again = mnist(root=cache, split="test", mirrors=[mirror.url], timeout=10)
    assert mirror.requests == WANTED  # served from the cache, not downloaded again
    np.testing.assert_array_equal(again[1], labels)


def test_download_only_what_is_missing(tmp_path, serve, served_mnist):
    mirror = serve(served_mnist)
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copyfile(served_mnist / TEST_IMAGES, cache / TEST_IMAGES)
    images, labels = mnist(root=cache, split="test", mirrors=[mirror.url], timeout=10)
    assert mirror.requests == ["/" + TEST_LABELS]
    assert images.shape == (10000, 1, 28, 28) and labels.shape == (10000,)


def test_corrupt_download_is_refused_and_nothing_is_kept(tmp_path, serve, served_mnist):
    damaged = bytearray((served_mnist / TEST_IMAGES).read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (served_mnist / TEST_IMAGES).write_bytes(bytes(damaged))
    mirror = serve(served_mnist)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match=r"could not download t10k-images-idx3-ubyte\.gz:\s+"
                                           rf"{mirror.url}t10k-images-idx3-ubyte\.gz: SHA-256 [0-9a-f]{{64}} "
                                           r"instead of 8d422c7b"):
        mnist(root=cache, split="test", mirrors=[mirror.url], timeout=10)
    assert mirror.requests == ["/" + TEST_IMAGES]
    assert contents(cache) == []


def test_truncated_download_is_refused(tmp_path, serve, served_mnist):
    (served_mnist / TEST_LABELS).write_bytes((served_mnist / TEST_LABELS).read_bytes()[:1000])
    mirror = serve(served_mnist)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match=r"(?s)could not download t10k-labels-idx1-ubyte\.gz:.*SHA-256"):
        mnist(root=cache, split="test", mirrors=[mirror.url], timeout=10)
    assert contents(cache) == [TEST_IMAGES]  # the verified images stay; no partial labels file


def test_a_mirror_that_404s_then_one_that_works(tmp_path, serve, served_mnist, mnist_test):
    empty = tmp_path / "empty"
    empty.mkdir()
    missing, good = serve(empty), serve(served_mnist)
    cache = tmp_path / "cache"
    images, labels = mnist(root=cache, split="test", mirrors=[missing.url, good.url.rstrip("/")], timeout=10)
    assert missing.requests == WANTED and good.requests == WANTED
    np.testing.assert_array_equal(labels, mnist_test[1])
    assert contents(cache) == sorted(FILES["test"])


def test_every_mirror_fails(tmp_path, serve, closed_port):
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = serve(empty)
    unreachable = f"http://127.0.0.1:{closed_port}/"
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError) as failure:
        mnist(root=cache, split="test", mirrors=[missing.url, unreachable], timeout=10)
    message = str(failure.value)
    assert message.startswith("could not download t10k-images-idx3-ubyte.gz")
    assert f"{missing.url}t10k-images-idx3-ubyte.gz: HTTP Error 404" in message
    assert re.search(rf"{re.escape(unreachable)}t10k-images-idx3-ubyte\.gz: .*[Rr]efused", message)
    assert contents(cache) == []


def test_unreachable_mirror(tmp_path, closed_port, no_proxy):
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match=r"(?s)could not download t10k-images-idx3-ubyte\.gz:.*127\.0\.0\.1.*refused"):
        mnist(root=cache, split="test", mirrors=[f"http://127.0.0.1:{closed_port}/"], timeout=10)
    assert contents(cache) == []


def test_existing_wrong_file_is_not_downloaded_again(tmp_path, serve, served_mnist):
    mirror = serve(served_mnist)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / TEST_IMAGES).write_bytes(b"not the published file")
    with pytest.raises(DatasetError, match=r"does not match the published .*delete it to download it again"):
        mnist(root=cache, split="test", mirrors=[mirror.url], timeout=10)
    assert mirror.requests == []
    assert (cache / TEST_IMAGES).read_bytes() == b"not the published file"


class BrokenHTTP(socketserver.BaseRequestHandler):
    """Answers every request with a malformed HTTP response (http.client.BadStatusLine)."""

    def handle(self):
        self.request.recv(65536)
        self.request.sendall(b"this is not HTTP\r\n\r\n")


def test_a_broken_http_mirror_falls_through_to_the_next(tmp_path, serve, served_mnist):
    good = serve(served_mnist)
    broken = socketserver.ThreadingTCPServer(("127.0.0.1", 0), BrokenHTTP)
    broken.daemon_threads = True
    threading.Thread(target=broken.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        cache = tmp_path / "cache"
        images, labels = mnist(root=cache, split="test", timeout=10,
                               mirrors=[f"http://127.0.0.1:{broken.server_address[1]}/", good.url])
    finally:
        broken.shutdown()
        broken.server_close()
    assert labels.shape == (10000,) and good.requests == WANTED


# ---- DataLoader -------------------------------------------------------------------------------
def toy(n: int = 10):
    images = np.arange(n * 4, dtype=np.float32).reshape(n, 1, 2, 2)
    return images, np.arange(n, dtype=np.int64)


def epoch(loader: DataLoader) -> list[list[int]]:
    return [labels.tolist() for _, labels in loader]


@pytest.mark.parametrize("n, batch_size, drop_last, sizes", [
    (10, 3, False, [3, 3, 3, 1]),
    (10, 3, True, [3, 3, 3]),
    (10, 5, False, [5, 5]),
    (10, 5, True, [5, 5]),
    (10, 10, True, [10]),
    (10, 64, False, [10]),
    (10, 64, True, []),
    (0, 4, False, []),
])
@pytest.mark.parametrize("shuffle", [False, True])
def test_batch_count_and_sizes(n, batch_size, drop_last, sizes, shuffle):
    loader = DataLoader(*toy(n), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    assert len(loader) == len(sizes)
    batches = list(loader)
    assert [len(labels) for _, labels in batches] == sizes
    assert [images.shape[0] for images, _ in batches] == sizes


@pytest.mark.parametrize("drop_last", [False, True])
def test_every_index_at_most_once_and_images_stay_with_their_labels(drop_last):
    images, labels = toy(10)
    loader = DataLoader(images, labels, batch_size=3, shuffle=True, seed=7, drop_last=drop_last)
    for _ in range(3):
        seen = []
        for batch_images, batch_labels in loader:
            np.testing.assert_array_equal(batch_images.data, images[batch_labels])
            seen += batch_labels.tolist()
        assert len(seen) == len(set(seen)) == (9 if drop_last else 10)
        if not drop_last:
            assert sorted(seen) == list(range(10))


def test_without_shuffle_the_order_is_the_data_order():
    loader = DataLoader(*toy(10), batch_size=4)
    assert epoch(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert epoch(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_shuffle_is_reproducible_and_depends_on_seed_and_epoch():
    a = DataLoader(*toy(50), batch_size=8, shuffle=True, seed=3)
    b = DataLoader(*toy(50), batch_size=8, shuffle=True, seed=3)
    c = DataLoader(*toy(50), batch_size=8, shuffle=True, seed=4)
    a_epochs = [epoch(a) for _ in range(3)]
    assert a_epochs == [epoch(b) for _ in range(3)]
    assert a_epochs[0] != epoch(c)
    assert a_epochs[0] != a_epochs[1] != a_epochs[2] != a_epochs[0]
    assert sum(a_epochs[0], []) != list(range(50))  # really shuffled
    # Identical images, not only labels, across the two loaders.
    for (xa, _), (xb, _) in zip(DataLoader(*toy(50), 8, True, 3), DataLoader(*toy(50), 8, True, 3)):
        np.testing.assert_array_equal(xa.data, xb.data)


def test_state_dict_continues_the_sequence(tmp_path):
    original = DataLoader(*toy(30), batch_size=4, shuffle=True, seed=11)
    epoch(original), epoch(original)
    state = original.state_dict()
    assert int(state["epoch"]) == 2 and int(state["seed"]) == 11
    # Through a checkpoint file, into a loader made with another seed.
    io.save({"loader": state}, tmp_path / "loader.npz")
    restored = DataLoader(*toy(30), batch_size=4, shuffle=True, seed=99)
    restored.load_state_dict(io.load(tmp_path / "loader.npz")["loader"])
    fresh = DataLoader(*toy(30), batch_size=4, shuffle=True, seed=11)
    expected = [epoch(fresh) for _ in range(4)][2:]
    assert [epoch(original) for _ in range(2)] == expected
    assert [epoch(restored) for _ in range(2)] == expected


def test_batches_of_real_mnist_are_float32_tensors_and_int_labels(mnist_test):
    images, labels = mnist_test
    loader = DataLoader(images, labels, batch_size=256, drop_last=True)
    assert len(loader) == 39
    batch_images, batch_labels = next(iter(loader))
    assert isinstance(batch_images, Tensor) and not batch_images.requires_grad
    assert batch_images.dtype == np.float32 and batch_images.shape == (256, 1, 28, 28)
    assert isinstance(batch_labels, Tensor) and batch_labels.dtype == np.int64  # as torch's, a Tensor of int64
    assert batch_labels.shape == (256,) and batch_labels.tolist()[:10] == EXPECTED["mnist"]["first"]
    np.testing.assert_array_equal(batch_images.data, images[:256])


def test_uint8_images_become_float32_tensors():
    images = np.arange(12, dtype=np.uint8).reshape(3, 1, 2, 2)
    batch_images, batch_labels = next(iter(DataLoader(images, np.arange(3, dtype=np.uint8), batch_size=2)))
    assert batch_images.dtype == np.float32 and batch_images.data[1, 0, 1, 1] == 7.0
    assert batch_labels.dtype.kind in "iu"


def test_numpy_integer_batch_size_is_accepted():
    assert len(DataLoader(*toy(10), batch_size=np.int64(4))) == 3


def test_the_arrays_loader_is_the_dataset_loader_over_a_tensor_dataset():
    from tinygrad_cnn.utils.data import DataLoader as DatasetLoader, TensorDataset
    images, labels = toy(11)
    ours = list(DataLoader(images, labels, batch_size=4, shuffle=True, seed=5))
    theirs = list(DatasetLoader(TensorDataset(images, labels), batch_size=4, shuffle=True, seed=5))
    assert isinstance(DataLoader(images, labels), DatasetLoader) and len(ours) == len(theirs) == 3
    for (xa, ya), (xb, yb) in zip(ours, theirs):
        np.testing.assert_array_equal(xa.data, xb.data.astype(xa.dtype))
        np.testing.assert_array_equal(ya.data, yb.data)
