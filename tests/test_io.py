"""Checkpoints (tinygrad_cnn.io) and module state dicts (nn.Module.state_dict / load_state_dict).

A checkpoint must round-trip bit for bit, be written atomically, and be read without ever
unpickling: every hostile or damaged file is a CheckpointError, and a pickle payload that would
touch a marker file must leave no marker behind.
"""
from __future__ import annotations

import ast
import gzip
import io as _bytes_io
import json
import os
import pathlib
import pickle
import re
import tracemalloc
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cnn
from tinygrad_cnn import Tensor, io, nn
from tinygrad_cnn.io import CheckpointError
from tinygrad_cnn.optim import Adam

PACKAGE = Path(tinygrad_cnn.__file__).resolve().parent
X = np.random.default_rng(123).standard_normal((2, 1, 5, 10)).astype(np.float32)


# ---- helpers ----------------------------------------------------------------------------------
def make_model(seed: int = 0, dropout_seed: int = 2) -> nn.Sequential:
    """Conv2d(1→2, 3×3) on (N, 1, 5, 10) gives (N, 2, 3, 8); Linear(8, 3) acts on the last axis."""
    return nn.Sequential(nn.Conv2d(1, 2, 3, rng=seed), nn.ReLU(), nn.Linear(8, 3, rng=seed + 1),
                         nn.Dropout(0.5, rng=dropout_seed))


def assert_trees_identical(loaded, expected, where="") -> None:
    """Same keys in the same order, and every leaf bitwise equal with the same dtype and shape."""
    assert isinstance(loaded, OrderedDict), where
    assert list(loaded) == list(expected), where
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_trees_identical(loaded[key], value, f"{where}/{key}")
            continue
        want = np.asarray(value)
        got = loaded[key]
        assert isinstance(got, np.ndarray), f"{where}/{key}"
        assert got.dtype == want.dtype, f"{where}/{key}"
        assert got.shape == want.shape, f"{where}/{key}"
        assert got.tobytes() == want.tobytes(), f"{where}/{key}"


def manifest_for(arrays: dict) -> dict:
    """The manifest `io.save` would write for these arrays."""
    return {"format": io.FORMAT, "version": io.VERSION,
            "arrays": {n: {"shape": list(np.shape(a)), "dtype": np.asarray(a).dtype.str}
                       for n, a in arrays.items()}}


def write_npz(path: Path, manifest, **arrays) -> Path:
    """A hand-made checkpoint: `manifest` (a dict, dumped to JSON, or a raw array) plus members."""
    entry = np.array(json.dumps(manifest)) if isinstance(manifest, dict) else manifest
    members = {} if manifest is None else {io.MANIFEST: entry}
    np.savez(path, **members, **arrays)
    return path


def member_span(path: Path, member: str) -> tuple[int, int]:
    """(start, end) byte offsets of a stored (uncompressed) zip member's contents in the file."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    assert info.compress_type == zipfile.ZIP_STORED
    with open(path, "rb") as file:
        file.seek(info.header_offset)
        header = file.read(30)
    assert header[:4] == b"PK\x03\x04"
    name_length = int.from_bytes(header[26:28], "little")
    extra_length = int.from_bytes(header[28:30], "little")
    start = info.header_offset + 30 + name_length + extra_length
    return start, start + info.compress_size


class TouchOnUnpickle:
    """Unpickling this object runs ``Path(marker).touch()``: the proof that something unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


@pytest.fixture
def payload(tmp_path):
    """(evil object, marker path). Checked live first: plain pickle.loads does create a marker."""
    control = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(TouchOnUnpickle(control)))
    assert control.exists(), "the payload must be live for the tests below to mean anything"
    marker = tmp_path / "marker"
    return TouchOnUnpickle(marker), marker


# ---- round trips ------------------------------------------------------------------------------
def test_module_round_trip_is_bitwise(tmp_path):
    model = make_model()
    model(Tensor(X))  # advance Dropout's call counter so the buffer is not just its initial 0
    path = tmp_path / "model.npz"
    io.save(model, path)
    loaded = io.load(path)
    assert list(loaded) == ["0.weight", "0.bias", "2.weight", "2.bias", "3.seed", "3.calls"]
    assert_trees_identical(loaded, model.state_dict())
    assert loaded["0.weight"].dtype == np.float32 and loaded["3.calls"].dtype == np.float64
    assert loaded["3.calls"] == 1


def test_loading_into_a_model_built_with_another_seed_gives_the_same_outputs(tmp_path):
    model = make_model(seed=0)
    model(Tensor(X))
    path = tmp_path / "model.npz"
    io.save(model, path)

    other = make_model(seed=10)
    assert not np.array_equal(other.eval()(Tensor(X)).data, model.eval()(Tensor(X)).data)
    other.load_state_dict(io.load(path))
    np.testing.assert_array_equal(other.eval()(Tensor(X)).data, model.eval()(Tensor(X)).data)
    # In training mode too: the Dropout call count came with the checkpoint, so the next mask is
    # the same (Dropout's own seed comes from its constructor argument, equal here).
    model.train(), other.train()
    out_model, out_other = model(Tensor(X)).data, other(Tensor(X)).data
    np.testing.assert_array_equal(out_other, out_model)
    assert (out_model == 0).any()  # dropout really dropped something


def test_nested_dict_with_optimizer_state_round_trips(tmp_path):
    model = make_model()
    optimizer = Adam(model.parameters(), lr=1e-2)
    model(Tensor(X)).sum().backward()
    optimizer.step()
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3,
                  "step": np.int32(7), "flags": np.array([True, False])}
    assert "exp_avg.0" in checkpoint["optimizer"]
    path = tmp_path / "checkpoint.npz"
    io.save(checkpoint, path)
    loaded = io.load(path)
    assert_trees_identical(loaded, checkpoint)
    assert loaded["epoch"].dtype == np.asarray(3).dtype and int(loaded["epoch"]) == 3
    assert loaded["step"].dtype == np.int32

    # The loaded state resumes training exactly: one more step from the restored copies equals
    # one more step of the original.
    resumed = make_model(seed=10)
    resumed.load_state_dict(loaded["model"])
    resumed_optimizer = Adam(resumed.parameters(), lr=0.5)
    resumed_optimizer.load_state_dict(loaded["optimizer"])
    for m, opt in ((model, optimizer), (resumed, resumed_optimizer)):
        opt.zero_grad()
        m(Tensor(X)).sum().backward()
        opt.step()
    assert_trees_identical(OrderedDict(resumed.state_dict()), model.state_dict())


def test_save_takes_tensors_and_scalars_and_loads_plain_arrays(tmp_path):
    tree = {"t": Tensor(np.arange(3, dtype=np.float64)), "i": 5, "f": 2.5, "b": True}
    io.save(tree, tmp_path / "c.npz")
    loaded = io.load(tmp_path / "c.npz")
    assert list(loaded) == ["t", "i", "f", "b"]
    assert loaded["t"].dtype == np.float64 and loaded["t"].tolist() == [0.0, 1.0, 2.0]
    assert loaded["i"].shape == () and int(loaded["i"]) == 5
    assert float(loaded["f"]) == 2.5 and loaded["b"].dtype == np.bool_


@pytest.mark.parametrize("tree, error, pattern", [
    ({"a": np.array([1, "x"], dtype=object)}, TypeError, "'a'.*object"),
    ({"s": np.array(["text"])}, TypeError, "'s'"),
    ({"c": np.ones(2, dtype=np.complex64)}, TypeError, "'c'"),
    ({"a/b": np.ones(2)}, ValueError, "names"),
    ({"": np.ones(2)}, ValueError, "names"),
    ({io.MANIFEST: np.ones(2)}, ValueError, "names"),
    ({3: np.ones(2)}, ValueError, "names"),
    ([np.ones(2)], TypeError, "Module or a dict"),
])
def test_save_refuses_what_it_cannot_store(tmp_path, tree, error, pattern):
    with pytest.raises(error, match=pattern):
        io.save(tree, tmp_path / "c.npz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["allow_pickle", "file"])
def test_entry_named_like_a_savez_argument_round_trips(tmp_path, name):
    io.save({name: np.arange(3.0)}, tmp_path / "c.npz")
    assert io.load(tmp_path / "c.npz")[name].tolist() == [0.0, 1.0, 2.0]


# ---- load_state_dict --------------------------------------------------------------------------
def _renamed(state, old, new):
    return OrderedDict((new if k == old else k, v) for k, v in state.items())


@pytest.mark.parametrize("edit, pattern", [
    (lambda s: OrderedDict((k, v) for k, v in s.items() if k != "0.bias"), r"missing keys \['0\.bias'\]"),
    (lambda s: OrderedDict(s, extra=np.zeros(3, np.float32)), r"unexpected keys \['extra'\]"),
    (lambda s: _renamed(s, "2.weight", "2.w"), r"missing keys \['2\.weight'\].*unexpected keys \['2\.w'\]"),
    (lambda s: OrderedDict(s, **{"0.weight": np.zeros((2, 1, 3, 2), np.float32)}),
     r"mismatch: 0\.weight: checkpoint \(2, 1, 3, 2\) float32, model \(2, 1, 3, 3\) float32"),
    (lambda s: OrderedDict(s, **{"2.bias": s["2.bias"].astype(np.float64)}),
     r"mismatch: 2\.bias: checkpoint \(3,\) float64, model \(3,\) float32"),
    (lambda s: OrderedDict(s, **{"3.calls": np.zeros((1,))}), r"mismatch: 3\.calls"),
])
def test_load_state_dict_names_the_problem_and_changes_nothing(edit, pattern):
    model = make_model(seed=0)
    before = model.state_dict()
    # Every other entry is valid and different, so a partial load would show.
    bad = edit(make_model(seed=10, dropout_seed=5).state_dict())
    with pytest.raises(nn.StateDictError, match=pattern):
        model.load_state_dict(bad)
    assert_trees_identical(OrderedDict(model.state_dict()), before)


def test_load_state_dict_of_another_architecture_from_a_checkpoint(tmp_path):
    io.save(nn.Sequential(nn.Linear(8, 3, rng=0)), tmp_path / "other.npz")
    model = make_model()
    before = model.state_dict()
    with pytest.raises(nn.StateDictError,
                       match=r"missing keys \['2\.weight', '2\.bias', '3\.seed', '3\.calls'\], shape or dtype mismatch: "
                             r"0\.weight: checkpoint \(3, 8\) float32, model \(2, 1, 3, 3\) float32; "
                             r"0\.bias: checkpoint \(3,\) float32, model \(2,\) float32"):
        model.load_state_dict(io.load(tmp_path / "other.npz"))
    assert_trees_identical(OrderedDict(model.state_dict()), before)


# ---- never unpickles --------------------------------------------------------------------------
PICKLE_REFUSED = r"(?i)pickle|object"


def test_npz_with_an_object_array_is_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, a=np.array([1, "x", None], dtype=object))
    with pytest.raises(CheckpointError, match=PICKLE_REFUSED):
        io.load(path)


@pytest.mark.parametrize("writer", ["np.save", "np.savez", "np.savez+manifest", "manifest itself",
                                    "raw pickle"])
def test_a_pickle_payload_is_never_executed(tmp_path, payload, writer):
    evil, marker = payload
    objects = np.array([evil], dtype=object)
    path = tmp_path / "checkpoint.npz"
    if writer == "np.save":  # a .npy file, named like a checkpoint
        with open(path, "wb") as file:
            np.save(file, objects, allow_pickle=True)
    elif writer == "np.savez":
        np.savez(path, evil=objects)
    elif writer == "np.savez+manifest":  # a manifest that declares the pickled member as valid
        arrays = {"w": np.ones(2), "evil": objects}
        manifest = manifest_for(arrays)
        assert manifest["arrays"]["evil"] == {"shape": [1], "dtype": "|O"}
        write_npz(path, manifest, **arrays)
    elif writer == "manifest itself":
        write_npz(path, np.array([evil], dtype=object), w=np.ones(2))
    else:  # a bare pickle renamed .npz
        path.write_bytes(pickle.dumps(evil))
    with pytest.raises(CheckpointError, match=PICKLE_REFUSED):
        io.load(path)
    assert not marker.exists(), "io.load unpickled the payload"


def test_a_pickled_dict_of_arrays_is_refused(tmp_path, payload):
    evil, marker = payload
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(pickle.dumps({"w": np.ones(2), "x": evil}))
    with pytest.raises(CheckpointError, match=PICKLE_REFUSED):
        io.load(path)
    assert not marker.exists()


# ---- corruption -------------------------------------------------------------------------------
@pytest.fixture
def good_checkpoint(tmp_path):
    path = tmp_path / "good.npz"
    io.save({"w": np.arange(64, dtype=np.float32).reshape(8, 8), "b": np.arange(5, dtype=np.int64)}, path)
    assert io.load(path)["w"][7, 7] == 63
    return path


CORRUPT = r"corrupt or truncated|unreadable"


@pytest.mark.parametrize("keep", [0.0, 1, 3, 10, 0.25, 0.5, 0.9, -22, -1])
def test_truncated_file(tmp_path, good_checkpoint, keep):
    data = good_checkpoint.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    path = tmp_path / "truncated.npz"
    path.write_bytes(data[:cut])
    with pytest.raises(CheckpointError, match=CORRUPT):
        io.load(path)


@pytest.mark.parametrize("member", ["w.npy", "b.npy", io.MANIFEST + ".npy"])
def test_flipped_byte_in_member_data_fails_the_crc(tmp_path, good_checkpoint, member):
    start, end = member_span(good_checkpoint, member)
    data = bytearray(good_checkpoint.read_bytes())
    data[end - 1] ^= 0x01  # the last byte of the member: array data (or the manifest's JSON)
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"(?i)CRC"):
        io.load(path)


def test_garbage_and_empty_and_directory(tmp_path):
    (tmp_path / "garbage.npz").write_bytes(b"this is not a checkpoint" * 10)
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "gzip.npz").write_bytes(gzip.compress(b"PK\x03\x04"))
    for name in ("garbage.npz", "empty.npz", "gzip.npz"):
        with pytest.raises(CheckpointError, match=CORRUPT):
            io.load(tmp_path / name)
    with pytest.raises(IsADirectoryError):
        io.load(tmp_path)  # a folder: the OS's own clear error
    with pytest.raises(FileNotFoundError):
        io.load(tmp_path / "absent.npz")


def test_plain_npy_file_is_refused(tmp_path):
    path = tmp_path / "array.npz"
    with open(path, "wb") as file:
        np.save(file, np.ones(3))
    with pytest.raises(CheckpointError, match="a single .npy array"):
        io.load(path)


def _valid_arrays():
    return {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(3, dtype=np.int64)}


def test_hand_made_valid_checkpoint_loads(tmp_path):
    """The control for the tampering tests below: the helper itself writes a loadable file."""
    arrays = _valid_arrays()
    loaded = io.load(write_npz(tmp_path / "c.npz", manifest_for(arrays), **arrays))
    assert_trees_identical(loaded, arrays)


@pytest.mark.parametrize("tamper, pattern", [
    (lambda m: m["arrays"]["w"].update(shape=[3, 2]),
     r"array 'w' is <f4 \(2, 3\), the manifest declares <f4 \(3, 2\)"),
    (lambda m: m["arrays"]["w"].update(dtype="<f8"), r"array 'w' is <f4 \(2, 3\), the manifest declares <f8"),
    (lambda m: m["arrays"]["b"].update(shape=[]), r"array 'b' is <i8 \(3,\), the manifest declares <i8 \(\)"),
    (lambda m: m.update(format="another checkpoint"), r"does not describe a tinygrad_cnn checkpoint"),
    (lambda m: m.pop("format"), r"does not describe a tinygrad_cnn checkpoint"),
    (lambda m: m.update(version=2), r"format version 2, this tinygrad_cnn reads version 1"),
    (lambda m: m.pop("version"), r"format version None"),
    (lambda m: m["arrays"].pop("b"), r"not declared \['b'\]"),
    (lambda m: m["arrays"].update(gone={"shape": [1], "dtype": "<f8"}), r"missing \['gone'\]"),
    (lambda m: m.update(arrays=["w", "b"]), CORRUPT),
    (lambda m: m["arrays"].update(w={"shape": 6, "dtype": "<f4"}), CORRUPT),
])
def test_manifest_that_does_not_match_the_arrays(tmp_path, tamper, pattern):
    arrays = _valid_arrays()
    manifest = manifest_for(arrays)
    tamper(manifest)
    with pytest.raises(CheckpointError, match=pattern):
        io.load(write_npz(tmp_path / "c.npz", manifest, **arrays))


def test_missing_member(tmp_path):
    arrays = _valid_arrays()
    manifest = manifest_for(arrays)
    del arrays["w"]
    with pytest.raises(CheckpointError, match=r"missing \['w'\], not declared \[\]"):
        io.load(write_npz(tmp_path / "c.npz", manifest, **arrays))


@pytest.mark.parametrize("manifest, pattern", [
    (None, r"no manifest"),
    (np.array("{not json"), r"unreadable"),
    (np.array("[1, 2]"), r"does not describe"),
    (np.array(5), r"manifest"),
])
def test_missing_or_unreadable_manifest(tmp_path, manifest, pattern):
    with pytest.raises(CheckpointError, match=pattern):
        io.load(write_npz(tmp_path / "c.npz", manifest, **_valid_arrays()))


def test_declared_array_of_a_refused_kind(tmp_path):
    arrays = {"c": np.ones(2, dtype=np.complex64), "u": np.array(["text"])}
    for name in arrays:
        one = {name: arrays[name]}
        with pytest.raises(CheckpointError, match=rf"'{name}' has dtype"):
            io.load(write_npz(tmp_path / f"{name}.npz", manifest_for(one), **one))


def test_declared_member_that_is_not_an_npy_array(tmp_path):
    manifest = {"format": io.FORMAT, "version": io.VERSION, "arrays": {"w": {"shape": [3], "dtype": "<f8"}}}
    header = _bytes_io.BytesIO()
    np.save(header, np.array(json.dumps(manifest)))
    path = tmp_path / "raw.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(io.MANIFEST + ".npy", header.getvalue())
        archive.writestr("w", b"24 raw bytes, not an npy")
    with pytest.raises(CheckpointError):
        io.load(path)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = _bytes_io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _zip_with_member(path: Path, manifest: dict, member: bytes) -> Path:
    """A checkpoint whose member 'w.npy' is `member`, stored with a valid CRC."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(io.MANIFEST + ".npy", _npy_bytes(np.array(json.dumps(manifest))))
        archive.writestr("w.npy", member)
    return path


@pytest.mark.parametrize("change, pattern", [
    (lambda b: b + b"\0" * 8, r"member 'w.npy' holds 32 bytes of array data, but its header declares <f4 \(2, 3\) "
                              r"\(24 bytes\)"),
    (lambda b: b + _npy_bytes(np.ones(3)), r"holds \d+ bytes of array data, but its header declares <f4 \(2, 3\)"),
    (lambda b: b[:-4], r"holds 20 bytes of array data, but its header declares <f4 \(2, 3\) \(24 bytes\)"),
], ids=["trailing zeros", "a second array appended", "cut short"])
def test_member_larger_or_smaller_than_its_header_declares(tmp_path, change, pattern):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = _zip_with_member(tmp_path / "c.npz", manifest_for({"w": w}), change(_npy_bytes(w)))
    with pytest.raises(CheckpointError, match=pattern):
        io.load(path)


def test_huge_declared_array_is_refused_before_anything_is_allocated(tmp_path):
    """A header (and a manifest) declaring 8 TB in a 200-byte file: refused from the sizes alone."""
    header = _bytes_io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    manifest = {"format": io.FORMAT, "version": io.VERSION, "arrays": {"w": {"shape": [10**12], "dtype": "<f8"}}}
    path = _zip_with_member(tmp_path / "c.npz", manifest, header.getvalue() + b"\0" * 16)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"holds 16 bytes of array data, but its header declares "
                                                  r"<f8 \(1000000000000,\)"):
            io.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_header_that_disagrees_with_the_manifest_is_refused_before_reading(tmp_path):
    w = np.zeros((4, 4), dtype=np.float64)
    manifest = manifest_for({"w": np.zeros(2, dtype=np.float64)})
    with pytest.raises(CheckpointError, match=r"array 'w' is <f8 \(4, 4\), the manifest declares <f8 \(2,\)"):
        io.load(_zip_with_member(tmp_path / "c.npz", manifest, _npy_bytes(w)))


@pytest.mark.parametrize("content, pattern", [
    (b"def f():\n    return 1\n", r"corrupt or truncated checkpoint: not a zip archive"),
    (pickle.dumps({"w": np.ones(2)}), r"a pickle file, not a checkpoint: refused, never unpickled"),
])
def test_other_formats_are_named(tmp_path, content, pattern):
    path = tmp_path / "c.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=pattern):
        io.load(path)


@pytest.mark.parametrize("order", [("a", "a/b"), ("a/b", "a")])
def test_name_that_is_also_a_folder(tmp_path, order):
    arrays = {name: np.zeros(1) for name in order}
    with pytest.raises(CheckpointError):
        io.load(write_npz(tmp_path / "c.npz", manifest_for(arrays), **arrays))


# ---- atomic save ------------------------------------------------------------------------------
def test_failed_rename_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    io.save(make_model(seed=0), path)
    old = path.read_bytes()
    seen = []

    def failing_replace(source, destination):
        source = Path(source)
        # The new checkpoint is complete, beside the destination, before the rename.
        assert source.parent == tmp_path and source != path and source.exists()
        assert_trees_identical(io.load(source), make_model(seed=10).state_dict())
        seen.append(source)
        raise OSError("simulated crash during rename")

    monkeypatch.setattr(io.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated crash"):
        io.save(make_model(seed=10), path)
    monkeypatch.undo()
    assert len(seen) == 1 and not seen[0].exists()
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_failed_rename_of_a_new_checkpoint_leaves_nothing(tmp_path, monkeypatch):
    def failing_replace(source, destination):
        raise OSError("simulated crash during rename")

    monkeypatch.setattr(io.os, "replace", failing_replace)
    with pytest.raises(OSError):
        io.save(make_model(), tmp_path / "model.npz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exception", [OSError("disk full"), KeyboardInterrupt()])
def test_failure_while_writing_keeps_the_old_checkpoint(tmp_path, monkeypatch, exception):
    path = tmp_path / "model.npz"
    io.save(make_model(seed=0), path)
    old = path.read_bytes()
    written = []

    def failing_fsync(fd):
        written.append(os.fstat(fd).st_size)
        raise exception

    monkeypatch.setattr(io.os, "fsync", failing_fsync)
    with pytest.raises(type(exception)):
        io.save(make_model(seed=10), path)
    monkeypatch.undo()
    assert written and written[0] > 0  # the temporary file had been written when it failed
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_unsaveable_entry_leaves_the_old_checkpoint_and_no_temporary(tmp_path):
    path = tmp_path / "model.npz"
    io.save({"w": np.ones(3)}, path)
    old = path.read_bytes()
    with pytest.raises(TypeError, match="'bad'"):
        io.save({"w": np.zeros(3), "bad": np.array([None], dtype=object)}, path)
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_save_overwrites_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "model.npz"
    io.save({"w": np.ones(3)}, path)
    io.save({"w": np.full(3, 2.0)}, str(path))
    assert io.load(path)["w"].tolist() == [2.0, 2.0, 2.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


# ---- source scan ------------------------------------------------------------------------------
SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_source_scan_covers_the_package():
    names = {p.relative_to(PACKAGE).as_posix() for p in SOURCES}
    assert {"io.py", "data.py", "nn/modules.py", "tensor.py", "ops/__init__.py"} <= names
    assert "allow_pickle=False" in (PACKAGE / "io.py").read_text()


def violations(text: str, filename: str = "<source>") -> list[str]:
    """Ways `text` could unpickle or evaluate: pickle.load(s), allow_pickle=True (written out or
    as a non-constant), importing pickle's loaders, and calls of the builtins eval or exec."""
    found = []
    if re.search(r"\bpickle\s*\.\s*loads?\b", text):
        found.append("pickle.load")
    if re.search(r"allow_pickle\s*=\s*True", text):
        found.append("allow_pickle=True")
    for node in ast.walk(ast.parse(text, filename=filename)):
        if isinstance(node, ast.ImportFrom) and node.module in ("pickle", "_pickle", "cPickle"):
            if {a.name for a in node.names} & {"load", "loads", "Unpickler"}:
                found.append(f"line {node.lineno}: from pickle import a loader")
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else (
                func.attr if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                and func.value.id == "builtins" else None)
            if name in ("eval", "exec"):
                found.append(f"line {node.lineno}: calls {name}")
            for keyword in node.keywords:
                if keyword.arg == "allow_pickle" and not (
                        isinstance(keyword.value, ast.Constant) and keyword.value.value is False):
                    found.append(f"line {node.lineno}: allow_pickle={ast.unparse(keyword.value)}")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_source_never_unpickles_or_evaluates(path):
    assert violations(path.read_text(encoding="utf-8"), str(path)) == []


@pytest.mark.parametrize("snippet, found", [
    ("import pickle\nx = pickle.loads(b'')", "pickle.load"),
    ("import pickle\nwith open('f', 'rb') as f:\n    pickle.load(f)", "pickle.load"),
    ("from pickle import loads", "from pickle import a loader"),
    ("np.load('f', allow_pickle=True)", "allow_pickle=True"),
    ("flag = True\nnp.load('f', allow_pickle=flag)", "allow_pickle=flag"),
    ("eval('1 + 1')", "calls eval"),
    ("import builtins\nbuiltins.exec('x = 1')", "calls exec"),
])
def test_the_source_scan_finds_what_it_looks_for(snippet, found):
    assert any(found in v for v in violations(snippet)), violations(snippet)
    assert violations("model.eval()\nnp.load('f', allow_pickle=False)\nast.literal_eval('1')") == []


def test_names_ending_in_npy_are_refused(tmp_path):
    with pytest.raises(ValueError, match="end in '.npy'"):
        io.save({"w": np.zeros(1), "w.npy": np.ones(1)}, tmp_path / "c.npz")
    assert list(tmp_path.iterdir()) == []
