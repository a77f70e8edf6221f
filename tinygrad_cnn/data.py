"""MNIST and Fashion-MNIST from their original IDX gzip files, and a batch iterator over arrays.

`mnist()` looks for the four files in `root` (default ``~/.cache/tinygrad_cnn/<dataset>``),
downloads any that are missing from a public HTTPS mirror, and keeps a file only after its
SHA-256 matches the published one (downloads go to a temporary file in the same folder, renamed
into place when verified). Parsing checks the gzip stream, the IDX magic number, the shape and
the item count, so a corrupt, truncated or wrong file is a clear `DatasetError`.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.request
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.utils import data as utils_data

__all__ = ["mnist", "DataLoader", "DatasetError", "read_idx", "SHA256", "MIRRORS", "FILES"]


class DatasetError(ValueError):
    """A dataset file that is missing, corrupt, truncated or not the published one."""


FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

# The publishers' files (byte-identical copies in every mirror).
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}

MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion-mnist": ("https://storage.googleapis.com/tensorflow/tf-keras-datasets/",),
}

IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_idx(path: str | os.PathLike[str], magic: int) -> np.ndarray:
    """Parse one gzip-compressed IDX file (big-endian header: magic, then one uint32 per axis)."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as file:
            raw = file.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: not a valid gzip file ({error})") from None
    ndim = magic & 0xFF
    found = int.from_bytes(raw[:4], "big")
    if len(raw) >= 4 and found != magic:
        raise DatasetError(f"{path}: IDX magic number {found:#010x}, expected {magic:#010x}")
    if len(raw) < 4 + 4 * ndim:
        raise DatasetError(f"{path}: truncated: {len(raw)} bytes, the IDX header alone needs {4 + 4 * ndim}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = raw[4 + 4 * ndim:]
    expected = int(np.prod(shape))
    if len(body) != expected:
        raise DatasetError(f"{path}: {'truncated' if len(body) < expected else 'trailing data'}: "
                           f"header says shape {shape} ({expected} bytes), found {len(body)} bytes")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _download(name: str, folder: Path, checksum: str, mirrors: Sequence[str], timeout: float) -> None:
    """Fetch `name` from the first mirror that serves the right bytes; keep nothing else."""
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + name
        handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        try:
            digest = hashlib.sha256()
            with os.fdopen(handle, "wb") as file, urllib.request.urlopen(url, timeout=timeout) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    file.write(block)
                file.flush()
                os.fsync(file.fileno())
            if digest.hexdigest() != checksum:
                raise DatasetError(f"SHA-256 {digest.hexdigest()} instead of {checksum}")
            os.replace(temporary, folder / name)
            return
        except (OSError, DatasetError, http.client.HTTPException) as error:  # try the next mirror
            failures.append(f"{url}: {error}")
        finally:
            Path(temporary).unlink(missing_ok=True)
    raise DatasetError(f"could not download {name}:\n  " + "\n  ".join(failures))


def _dataset_file(name: str, folder: Path, checksum: str, mirrors: Sequence[str], download: bool,
                  timeout: float) -> Path:
    path = folder / name
    if not path.exists():
        if not download:
            raise DatasetError(f"{path} does not exist (and download=False)")
        folder.mkdir(parents=True, exist_ok=True)
        _download(name, folder, checksum, mirrors, timeout)
    actual = _sha256(path)
    for dataset, other in (("fashion-mnist", "Fashion-MNIST"), ("mnist", "MNIST")):  # the other data set's file?
        if actual == SHA256[dataset].get(name) and actual != checksum:
            raise DatasetError(f"{path}: these are the {other} files: pass fashion={dataset == 'fashion-mnist'}")
    if actual != checksum:
        raise DatasetError(f"{path}: SHA-256 {actual} does not match the published {checksum}; "
                           "the file is corrupt or not the original (delete it to download it again)")
    return path


def mnist(root: str | os.PathLike[str] | None = None, split: str = "train", fashion: bool = False,
          download: bool = True, mirrors: Sequence[str] | None = None,
          timeout: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST (or Fashion-MNIST) images and labels.

    Returns ``(images, labels)``: float32 images scaled to [0, 1] of shape (N, 1, 28, 28) and
    int64 labels of shape (N,); N is 60,000 for ``split="train"`` and 10,000 for ``"test"``.
    `root` is the folder holding the four ``*-ubyte.gz`` files (default
    ``~/.cache/tinygrad_cnn/mnist`` or ``.../fashion-mnist``); missing files are downloaded there
    from `mirrors` unless ``download=False``.
    """
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    dataset = "fashion-mnist" if fashion else "mnist"
    folder = Path(root).expanduser() if root is not None else Path.home() / ".cache" / "tinygrad_cnn" / dataset
    mirrors = tuple(mirrors) if mirrors is not None else MIRRORS[dataset]
    image_name, label_name = FILES[split]
    images = read_idx(_dataset_file(image_name, folder, SHA256[dataset][image_name], mirrors, download, timeout),
                      IMAGE_MAGIC)
    labels = read_idx(_dataset_file(label_name, folder, SHA256[dataset][label_name], mirrors, download, timeout),
                      LABEL_MAGIC)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise DatasetError(f"{folder}: {images.shape[0]} images of shape {images.shape[1:]} but "
                           f"{labels.shape[0]} labels; expected (N, 28, 28) images and N labels")
    return (images.reshape(-1, 1, 28, 28).astype(np.float32) / np.float32(255.0), labels.astype(np.int64))


class DataLoader(utils_data.DataLoader):
    """``utils.data.DataLoader(TensorDataset(images, labels), ...)`` for two arrays with the same
    first axis, with this module's defaults (batch 64, seed 0): batches of (images, labels)
    Tensors, the images floating (integer pixels become float32, as ``Tensor(images)``).

    With ``shuffle=True`` each epoch draws its order from ``(seed, epoch)``, so two loaders with
    the same seed give the same batches, and one restored with `load_state_dict` continues the
    sequence. `drop_last` drops a final batch smaller than `batch_size`.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int = 64, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False) -> None:
        try:
            images, labels = np.asarray(images), np.asarray(labels)
        except ValueError as error:  # ragged nested lists
            raise ValueError(f"DataLoader: images and labels must be rectangular arrays: {error}") from None
        for name, array in (("images", images), ("labels", labels)):
            if array.dtype.kind not in "biuf":  # checked here, not at the first batch of an epoch
                raise TypeError(f"DataLoader: {name} must be an array of numbers, got dtype {array.dtype}")
        if images.ndim == 0 or labels.ndim == 0 or len(images) != len(labels):
            raise ValueError(f"DataLoader: images of shape {images.shape} and labels of shape {labels.shape} "
                             "need the same first axis")
        if seed is None:
            raise TypeError("DataLoader: seed must be an int, got None")
        super().__init__(utils_data.TensorDataset(images, labels), batch_size, shuffle, drop_last=drop_last, seed=seed)
        self.images, self.labels = images, labels

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for images, labels in super().__iter__():
            yield images if images.dtype.kind == "f" else images.float(), labels
