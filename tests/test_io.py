"""Checkpoints (tinygrad_cnn.io) and module state dicts (nn.Module.state_dict / load_state_dict).

A checkpoint must round-trip bit for bit, be written atomically, and be read without ever
unpickling: every hostile or damaged file is a CheckpointError, and a pickle payload that would
touch a marker file must leave no marker behind. The format is safetensors; the previous .npz
format is still read (and written for a path ending in .npz), so its own cases stay here too.
PyTorch reads what we save and we read what it saves (behind importorskip("torch")).
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygrad_cnn
from tinygrad_cnn import Tensor, io, nn
from tinygrad_cnn.io import CheckpointError
from tinygrad_cnn.optim import Adam
from tinygrad_cnn.optim.lr_scheduler import StepLR

PACKAGE = Path(tinygrad_cnn.__file__).resolve().parent
X = np.random.default_rng(123).standard_normal((2, 1, 5, 10)).astype(np.float32)


# ---- helpers ----------------------------------------------------------------------------------
def make_model(seed: int = 0, dropout_seed: int = 2) -> nn.Sequential:
    """Conv2d(1→2, 3×3) on (N, 1, 5, 10) gives (N, 2, 3, 8); Linear(8, 3) acts on the last axis."""
    return nn.Sequential(nn.Conv2d(1, 2, 3, rng=seed), nn.ReLU(), nn.Linear(8, 3, rng=seed + 1),
                         nn.Dropout(0.5, rng=dropout_seed))


def assert_resumes_exactly(model, optimizer, loaded):
    """One more step from the loaded model and optimizer state equals one more of the originals."""
    resumed = make_model(seed=10)
    resumed.load_state_dict(loaded["model"])
    resumed_optimizer = Adam(resumed.parameters(), lr=0.5)
    resumed_optimizer.load_state_dict(loaded["optimizer"])
    for m, opt in ((model, optimizer), (resumed, resumed_optimizer)):
        opt.zero_grad()
        m(Tensor(X)).sum().backward()
        opt.step()
    assert_trees_identical(OrderedDict(resumed.state_dict()), model.state_dict())


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
SUFFIXES = [".safetensors", ".npz"]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_module_round_trip_is_bitwise(tmp_path, suffix):
    model = make_model()
    model(Tensor(X))  # advance Dropout's call counter so the buffer is not just its initial 0
    path = tmp_path / f"model{suffix}"
    io.save(model, path)
    loaded = io.load(path)
    assert list(loaded) == ["0.weight", "0.bias", "2.weight", "2.bias", "3.seed", "3.calls"]
    assert_trees_identical(loaded, model.state_dict())
    assert loaded["0.weight"].dtype == np.float32 and loaded["3.calls"].dtype == np.float64
    assert loaded["3.calls"] == 1


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_loading_into_a_model_built_with_another_seed_gives_the_same_outputs(tmp_path, suffix):
    model = make_model(seed=0)
    model(Tensor(X))
    path = tmp_path / f"model{suffix}"
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


def test_nested_dict_with_optimizer_state_round_trips_through_npz(tmp_path):
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
    assert_resumes_exactly(model, optimizer, loaded)


def test_npz_takes_tensors_and_scalars_and_loads_plain_arrays(tmp_path):
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
def test_npz_save_refuses_what_it_cannot_store(tmp_path, tree, error, pattern):
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


# ---- corruption of the previous format (.npz) ----------------------------------------------------
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
        with pytest.raises(CheckpointError, match=CORRUPT + "|a text file, not a checkpoint"):
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
    (b"def f():\n    return 1\n", r"a text file, not a checkpoint \(it starts 'def f\(\):\\n    return 1\\n'\)"),
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
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_failed_rename_keeps_the_old_checkpoint(tmp_path, monkeypatch, suffix):
    path = tmp_path / f"model{suffix}"
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
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_failed_rename_of_a_new_checkpoint_leaves_nothing(tmp_path, monkeypatch, suffix):
    def failing_replace(source, destination):
        raise OSError("simulated crash during rename")

    monkeypatch.setattr(io.os, "replace", failing_replace)
    with pytest.raises(OSError):
        io.save(make_model(), tmp_path / f"model{suffix}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("exception", [OSError("disk full"), KeyboardInterrupt()])
def test_failure_while_writing_keeps_the_old_checkpoint(tmp_path, monkeypatch, exception, suffix):
    path = tmp_path / f"model{suffix}"
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
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_unsaveable_entry_leaves_the_old_checkpoint_and_no_temporary(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    io.save({"w": np.ones(3)}, path)
    old = path.read_bytes()
    with pytest.raises(TypeError, match="'bad'"):
        io.save({"w": np.zeros(3), "bad": np.array([None], dtype=object)}, path)
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_save_overwrites_and_leaves_no_temporary(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    io.save({"w": np.ones(3)}, path)
    io.save({"w": np.full(3, 2.0)}, str(path))
    assert io.load(path)["w"].tolist() == [2.0, 2.0, 2.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


# ---- safetensors: what is kept, and what PyTorch's tools see ------------------------------------
def test_nested_checkpoint_keeps_arrays_values_nesting_and_order(tmp_path):
    """Arrays and Tensors become tensors; ints, floats, strings, bools, None and lists come back
    as themselves (JSON in the header's metadata); the nesting and the key order are kept."""
    model = make_model()
    optimizer = Adam(model.parameters(), lr=1e-2)
    model(Tensor(X)).sum().backward()
    optimizer.step()
    scheduler = StepLR(optimizer, step_size=2)
    scheduler.step()
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                  "scheduler": scheduler.state_dict(), "epoch": 3, "lr": 2.5e-3,
                  "run": "relu-sgd", "best": True, "note": None, "history": [0.5, 0.25, [1, "two"]],
                  "step": np.int32(7), "flags": np.array([True, False]), "t": Tensor(np.arange(3.0))}
    path = tmp_path / "checkpoint.safetensors"
    io.save(checkpoint, path)
    loaded = io.load(path)
    assert list(loaded) == list(checkpoint)
    assert_trees_identical(loaded["model"], checkpoint["model"])
    assert_trees_identical(loaded["optimizer"], checkpoint["optimizer"])
    assert list(loaded["scheduler"].items()) == list(scheduler.state_dict().items())  # a nested dict of values
    for key in ("epoch", "lr", "run", "best", "note", "history"):
        assert loaded[key] == checkpoint[key] and type(loaded[key]) is type(checkpoint[key]), key
    assert loaded["step"].dtype == np.int32 and loaded["step"].shape == () and loaded["step"] == 7
    assert loaded["flags"].tolist() == [True, False] and loaded["t"].tolist() == [0.0, 1.0, 2.0]
    # Resuming from the loaded state equals going on: one more step of each.
    assert_resumes_exactly(model, optimizer, loaded)


def test_the_file_is_plain_safetensors_with_dotted_names(tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    tree = {"model": make_model().state_dict(), "epoch": 2}
    io.save(tree, tmp_path / "c.safetensors")
    theirs = load_file(tmp_path / "c.safetensors")
    assert sorted(theirs) == sorted(f"model.{k}" for k in tree["model"])  # values live in the metadata
    for key, value in tree["model"].items():
        assert theirs[f"model.{key}"].dtype == value.dtype and np.array_equal(theirs[f"model.{key}"], value)
    with safe_open(tmp_path / "c.safetensors", framework="np") as file:
        assert file.metadata()["format"] == "pt"  # what the Hugging Face loaders ask for
        assert json.loads(file.metadata()["tinygrad_cnn"])["values"] == {"epoch": 2}


def test_a_file_written_elsewhere_loads_flat_in_header_order(tmp_path):
    from safetensors.numpy import save_file

    arrays = {"conv.weight": np.ones((2, 1, 3, 3), np.float32), "bn.num_batches_tracked": np.array(5),
              "h": np.ones(2, np.float16), "mask": np.array([True, False])}
    save_file(arrays, tmp_path / "theirs.safetensors")
    loaded = io.load(tmp_path / "theirs.safetensors")
    assert isinstance(loaded, OrderedDict) and sorted(loaded) == sorted(arrays)
    for key, value in arrays.items():
        assert loaded[key].dtype == value.dtype and loaded[key].shape == value.shape
        assert np.array_equal(loaded[key], value) and loaded[key].flags.writeable


def test_big_endian_and_strided_arrays_are_saved_as_their_values(tmp_path):
    tree = {"be": np.arange(6, dtype=">f4").reshape(2, 3), "strided": np.arange(20.0)[::3],
            "empty": np.zeros((0, 3), np.int16), "scalar": np.float64(1.5)}
    io.save(tree, tmp_path / "c.safetensors")
    loaded = io.load(tmp_path / "c.safetensors")
    for key, value in tree.items():
        assert loaded[key].shape == np.shape(value) and np.array_equal(loaded[key], value), key
    assert loaded["be"].dtype == np.float32 and loaded["be"].dtype.isnative


@pytest.mark.parametrize("tree, error, pattern", [
    ({"a": np.array([1, "x"], dtype=object)}, TypeError, "'a'.*object"),
    ({"c": np.ones(2, dtype=np.complex64)}, TypeError, "'c' has dtype complex64"),
    ({"s": np.array(["text"])}, TypeError, "'s' has dtype <U4"),
    ({"o": object()}, TypeError, "'o' is a object: save arrays, Tensors, and numbers"),
    ({"l": [1, np.ones(2)]}, TypeError, "'l' is a list"),
    ({"d": {"x": {1, 2}}}, TypeError, r"'d\.x' is a set"),
    ({"a.b": np.ones(1), "a": {"b": np.zeros(1)}}, ValueError, r"differ once joined by dots.*'a\.b'"),
    ({"__metadata__": 1}, ValueError, "'__metadata__'"),
    ({"": np.ones(2)}, ValueError, "names must be non-empty strings"),
    ({3: np.ones(2)}, ValueError, "names must be non-empty strings, got 3"),
    ([np.ones(2)], TypeError, "Module or a dict"),
])
def test_save_refuses_what_it_cannot_store(tmp_path, tree, error, pattern):
    with pytest.raises(error, match=pattern):
        io.save(tree, tmp_path / "c.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_names_with_slashes_and_npy_endings_are_fine_in_safetensors(tmp_path):
    tree = {"a/b": np.ones(2), "w.npy": np.zeros(1), "file": 1, "allow_pickle": np.arange(2)}
    io.save(tree, tmp_path / "c.safetensors")
    loaded = io.load(tmp_path / "c.safetensors")
    assert list(loaded) == list(tree) and loaded["file"] == 1 and loaded["a/b"].tolist() == [1.0, 1.0]


def test_format_follows_the_suffix(tmp_path):
    for name in ("c.safetensors", "c.ckpt", "c"):
        io.save({"w": np.ones(2)}, tmp_path / name)
        assert int.from_bytes((tmp_path / name).read_bytes()[:8], "little") < 1000  # a safetensors header
    io.save({"w": np.ones(2)}, tmp_path / "c.npz")
    assert (tmp_path / "c.npz").read_bytes()[:2] == b"PK"
    assert all(io.load(p)["w"].tolist() == [1.0, 1.0] for p in tmp_path.iterdir())


# ---- safetensors: damaged and hostile files -------------------------------------------------------
W, B = np.arange(6, dtype=np.float32).reshape(2, 3), np.arange(3, dtype=np.int64)


def safetensors_bytes(header: dict, data: bytes, length: int | None = None, raw: bytes | None = None) -> bytes:
    """A hand-made file: 8-byte header length (default: the true one), the JSON header, the data."""
    raw = json.dumps(header).encode() if raw is None else raw
    return (len(raw) if length is None else length).to_bytes(8, "little") + raw + data


def valid_header(**changes) -> dict:
    header = {"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "b": {"dtype": "I64", "shape": [3], "data_offsets": [24, 48]}}
    for name, spec in changes.items():
        header[name] = spec if spec is None or len(spec) == 3 else {**header[name], **spec}
    return {k: v for k, v in header.items() if v is not None}


DATA = W.tobytes() + B.tobytes()
HEADER_LENGTH = len(json.dumps(valid_header()).encode())


def test_hand_made_safetensors_file_loads(tmp_path):
    """The control for the cases below: the helpers themselves make a loadable file."""
    path = tmp_path / "c.safetensors"
    path.write_bytes(safetensors_bytes(valid_header(), DATA))
    assert_trees_identical(io.load(path), {"w": W, "b": B})


@pytest.mark.parametrize("content, pattern", [
    (safetensors_bytes(valid_header(), DATA, length=HEADER_LENGTH + 100),
     rf"header length says {HEADER_LENGTH + 100} bytes, but only {HEADER_LENGTH + 48} bytes follow it \(wrong header"),
    (safetensors_bytes(valid_header(), DATA, length=HEADER_LENGTH - 5), r"the header is not valid JSON"),
    (safetensors_bytes(valid_header(), DATA, length=8 * 10**12),
     r"corrupt or truncated checkpoint: its header length says 8000000000000 bytes"),
    (safetensors_bytes(valid_header(b={"shape": [600], "data_offsets": [24, 4824]}), DATA),
     r"tensor 'b' ends at byte 4824 of the data, which holds 48 bytes \(offsets past the end\)"),
    (safetensors_bytes(valid_header(w={"dtype": "Q99"}), DATA), r"tensor 'w' has an unknown dtype 'Q99'"),
    (safetensors_bytes(valid_header(w={"dtype": "BF16", "shape": [2, 6]}), DATA), r"unknown dtype 'BF16'.*bfloat16"),
    (safetensors_bytes(valid_header(w={"data_offsets": [0, 20]}), DATA), r"'w' is F32 \(2, 3\), but its offsets span 20"),
    (safetensors_bytes(valid_header(b={"data_offsets": [28, 52]}), DATA + bytes(4)),
     r"tensor 'b' starts at byte 28 of the data, not at 24 \(tensors must follow each other\)"),
    (safetensors_bytes(valid_header(b={"data_offsets": [16, 40]}), DATA[:40]), r"'b' starts at byte 16 .*not at 24"),
    (safetensors_bytes(valid_header(), DATA + bytes(8)), r"corrupt checkpoint: 8 bytes after the last tensor"),
    (safetensors_bytes({}, b"", raw=b"{not json"), r"unreadable checkpoint: the header is not valid JSON"),
    (safetensors_bytes({}, b"", raw=b'{"\xff": 1}'), r"the header is not valid JSON"),
    (safetensors_bytes({}, b"", raw=b"[" * 100_000 + b"]" * 100_000), r"the header is not valid JSON"),
    (safetensors_bytes({}, b"", raw=b"[1, 2]"), r"the header is not a JSON object"),
    (safetensors_bytes(valid_header(w={"shape": "2x3"}), DATA), r"the header's entry for 'w' is malformed"),
    (safetensors_bytes(valid_header(w={"shape": [2, -3]}), DATA), r"entry for 'w' is malformed"),
    (safetensors_bytes(valid_header(w={"shape": [True, 3]}), DATA), r"entry for 'w' is malformed"),
    (safetensors_bytes(valid_header(w={"data_offsets": [0.0, 24.0]}), DATA), r"entry for 'w' is malformed"),
    (safetensors_bytes({**valid_header(), "x": [1]}, DATA), r"entry for 'x' is malformed"),
    (safetensors_bytes({**valid_header(), "__metadata__": {"a": 1}}, DATA), r"__metadata__ is not a table of strings"),
    (safetensors_bytes({**valid_header(), "__metadata__": {"tinygrad_cnn": "{oops"}}, DATA),
     r"our metadata is not JSON"),
    (safetensors_bytes({**valid_header(), "__metadata__": {"tinygrad_cnn": json.dumps(
        {"version": 2, "entries": [["w"], ["b"]], "values": {}})}}, DATA), r"metadata version 2, this tinygrad_cnn reads 1"),
    (safetensors_bytes({**valid_header(), "__metadata__": {"tinygrad_cnn": json.dumps(
        {"version": 1, "entries": [["w"]], "values": {}})}}, DATA), r"differ from the metadata's entries: missing \['b'\]"),
    (safetensors_bytes({**valid_header(), "__metadata__": {"tinygrad_cnn": json.dumps(
        {"version": 1, "entries": [["w"], ["b"], ["gone"]], "values": {}})}}, DATA), r"not stored \['gone'\]"),
    (safetensors_bytes({**valid_header(), "__metadata__": {"tinygrad_cnn": json.dumps(
        {"version": 1, "entries": [["w"], ["b"], [""]], "values": {}})}}, DATA), r"entries are malformed"),
    (safetensors_bytes({"f": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\x01\x02"),
     r"bool tensor 'f' holds bytes other than 0 and 1"),
    (safetensors_bytes({"e": {"dtype": "F32", "shape": [0, 10**30], "data_offsets": [0, 0]}}, b""),
     r"tensor 'e' is F32 \(0, 10{30}\), but its offsets span 0 bytes"),
    (safetensors_bytes({"e": {"dtype": "F32", "shape": [1] * 65, "data_offsets": [0, 4]}}, bytes(4)),
     r"tensor 'e' is F32 \(1, 1, "),
], ids=["length past the end", "length inside the header", "header of 8 TB", "offsets past the end",
        "unknown dtype", "bfloat16", "size and offsets disagree", "gap", "overlap", "trailing bytes", "not JSON",
        "not UTF-8", "nested too deep", "not an object", "shape not a list", "negative size", "bool size",
        "float offsets", "entry not a table", "metadata not strings", "our metadata not JSON", "metadata version",
        "tensor not in the entries", "entry without a tensor", "empty key", "bool bytes",
        "empty but too large", "65 dims"])
def test_damaged_safetensors_file_is_named(tmp_path, content, pattern):
    path = tmp_path / "c.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=pattern):
        io.load(path)


def test_name_that_is_both_a_value_and_a_folder(tmp_path):
    meta = json.dumps({"version": 1, "entries": [["w"], ["w", "b"]], "values": {}})
    header = {"__metadata__": {"tinygrad_cnn": meta}, "w": valid_header()["w"],
              "w.b": {"dtype": "I64", "shape": [3], "data_offsets": [24, 48]}}
    (tmp_path / "c.safetensors").write_bytes(safetensors_bytes(header, DATA))
    with pytest.raises(CheckpointError, match=r"names \['w', 'b'\] under a value of the same name"):
        io.load(tmp_path / "c.safetensors")


def test_tensor_of_8_tb_is_refused_before_anything_is_allocated(tmp_path):
    """A header declaring a 10¹²-element float64 tensor (8 TB) in a 200-byte file: refused from
    the sizes alone."""
    header = {"w": {"dtype": "F64", "shape": [10**12], "data_offsets": [0, 8 * 10**12]}}
    (tmp_path / "c.safetensors").write_bytes(safetensors_bytes(header, bytes(16)))
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"'w' ends at byte 8000000000000 of the data, which holds 16"):
            io.load(tmp_path / "c.safetensors")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_header_over_the_limit_is_refused_unread(tmp_path):
    """A header length within the file but over safetensors' 100 MB limit (a sparse file)."""
    path = tmp_path / "big.safetensors"
    with open(path, "wb") as file:
        file.write((io.MAX_HEADER + 1).to_bytes(8, "little") + b"{")
        file.truncate(io.MAX_HEADER + 64)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=rf"a header of {io.MAX_HEADER + 1} bytes \(the limit is"):
            io.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


@pytest.mark.parametrize("keep", [0, 1, 7, 8, 9, 0.3, 0.6, 0.9, -1])
def test_truncated_safetensors_file(tmp_path, keep):
    io.save({"model": make_model().state_dict(), "epoch": 1}, tmp_path / "good.safetensors")
    data = (tmp_path / "good.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:int(len(data) * keep) if isinstance(keep, float) else keep % len(data)])
    with pytest.raises(CheckpointError, match=CORRUPT):
        io.load(tmp_path / "cut.safetensors")


def fake_torch_save_file(path: Path) -> Path:
    """The layout of a torch.save file: a zip whose 'archive/data.pkl' member is a pickle."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": [1.0, 2.0]}))
        archive.writestr("archive/version", "3\n")
    return path


@pytest.mark.parametrize("content, pattern", [
    (pickle.dumps({"w": np.ones(2)}), r"a pickle file, not a checkpoint: refused, never unpickled"),
    (b"<!DOCTYPE html><html><body>404 Not Found</body></html>", r"a text file, not a checkpoint"),
    (b'{"w": {"dtype": "F32"}}\n', r"a text file, not a checkpoint"),
    (gzip.compress(b"weights"), r"corrupt or truncated checkpoint: its header length says"),
    (b"\x00" * 3, r"corrupt or truncated checkpoint \(3 bytes\)"),
], ids=["pickle", "html page", "json file", "gzip", "three bytes"])
def test_other_files_named_safetensors_are_named(tmp_path, content, pattern):
    path = tmp_path / "c.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=pattern):
        io.load(path)


def test_zips_that_are_not_ours_are_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"a PyTorch torch.save file \(pickled\): refused, never unpickled"):
        io.load(fake_torch_save_file(tmp_path / "model.pt"))
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(CheckpointError, match=r"no manifest: not a tinygrad_cnn checkpoint"):
        io.load(tmp_path / "other.zip")


def test_a_pickle_payload_named_safetensors_is_never_executed(tmp_path, payload):
    evil, marker = payload
    for content in (pickle.dumps(evil), pickle.dumps({"w": evil}, protocol=2)):
        (tmp_path / "c.safetensors").write_bytes(content)
        with pytest.raises(CheckpointError, match=PICKLE_REFUSED):
            io.load(tmp_path / "c.safetensors")
    with pytest.raises(CheckpointError):
        io.load(fake_torch_save_file(tmp_path / "evil.pt"))
    assert not marker.exists()


@pytest.fixture(scope="module")
def saved_bytes(tmp_path_factory):
    """A valid checkpoint with tensors of several dtypes and metadata values, as bytes."""
    path = tmp_path_factory.mktemp("fuzz") / "good.safetensors"
    io.save({"model": {"w": W, "b": B, "mask": np.array([True, False, True])}, "epoch": 4, "name": "run"}, path)
    return path.read_bytes()


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4),
       cut=st.none() | st.integers(0, 10**6))
def test_random_byte_flips_and_cuts_give_a_checkpoint_error_or_a_correct_load(tmp_path, saved_bytes, flips, cut):
    """Whatever is flipped or cut, load raises CheckpointError or returns a checkpoint of the
    declared shapes (safetensors has no checksum: a flipped data byte loads as another value),
    never another exception and never a hang (the deadline)."""
    data = bytearray(saved_bytes)
    for position, mask in flips:
        data[position % len(data)] ^= mask
    path = tmp_path / "fuzzed.safetensors"
    path.write_bytes(bytes(data[:cut % (len(data) + 1)] if cut is not None else data))
    try:
        loaded = io.load(path)
    except CheckpointError:
        return
    assert isinstance(loaded, OrderedDict)
    header_end = 8 + int.from_bytes(saved_bytes[:8], "little")
    if cut is None and all(position % len(data) >= header_end for position, _ in flips):  # data bytes only
        assert list(loaded) == ["model", "epoch", "name"] and loaded["epoch"] == 4
        for key, value in {"w": W, "b": B}.items():
            assert loaded["model"][key].dtype == value.dtype and loaded["model"][key].shape == value.shape


# ---- both ways with PyTorch ---------------------------------------------------------------------------
def small_cnn(nn_namespace):
    """The same conv → BatchNorm → ReLU → pool → linear network in either framework."""
    n = nn_namespace
    return n.Sequential(n.Conv2d(1, 4, 3, padding=1), n.BatchNorm2d(4), n.ReLU(), n.MaxPool2d(2),
                        n.Conv2d(4, 6, 3), n.ReLU(), n.Flatten(), n.Linear(6 * 2 * 2, 5))


IMAGES = np.random.default_rng(5).standard_normal((8, 1, 8, 8)).astype(np.float32)
LABELS = np.array([0, 1, 2, 3, 4, 0, 1, 2])


def train_ours(model, images=IMAGES, steps=3):
    """A few SGD steps in training mode (BatchNorm's running statistics move), then eval mode."""
    import tinygrad_cnn.functional as F
    from tinygrad_cnn.optim import SGD

    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(steps):
        loss = F.cross_entropy(model(Tensor(images)), Tensor(LABELS))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.mark.parametrize("build", ["small_cnn", "nielsen_cnn"])
def test_trained_here_loads_in_pytorch_with_equal_logits(tmp_path, build):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    from tinygrad_cnn.models import nielsen_cnn

    images = IMAGES if build == "small_cnn" else np.random.default_rng(6).standard_normal((8, 1, 28, 28)).astype(np.float32)
    ours = train_ours(small_cnn(nn) if build == "small_cnn" else nielsen_cnn("relu", seed=1), images)
    io.save(ours, tmp_path / "ours.safetensors")
    theirs = small_cnn(torch.nn) if build == "small_cnn" else torch.nn.Sequential(
        torch.nn.Conv2d(1, 20, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Conv2d(20, 40, 5),
        torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(640, 100), torch.nn.ReLU(),
        torch.nn.Linear(100, 10))
    result = theirs.load_state_dict(load_file(tmp_path / "ours.safetensors"), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    theirs.eval()
    with torch.no_grad():
        expected = theirs(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(ours(Tensor(images)).data, expected, rtol=1e-4, atol=1e-5)
    if build == "small_cnn":  # the running statistics came along, and moved here
        assert int(theirs[1].num_batches_tracked) == 3 and theirs[1].num_batches_tracked.dtype == torch.int64
        assert not np.allclose(theirs[1].running_var.numpy(), 1.0)


def test_trained_in_pytorch_loads_here_with_equal_logits(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    theirs = small_cnn(torch.nn)
    optimizer = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(IMAGES)), torch.from_numpy(LABELS))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    save_file(theirs.state_dict(), tmp_path / "theirs.safetensors")
    ours = small_cnn(nn)
    ours.load_state_dict(io.load(tmp_path / "theirs.safetensors"))  # strict: every key and dtype matches
    assert ours.state_dict()["1.num_batches_tracked"].dtype == np.int64 and ours.state_dict()["1.num_batches_tracked"] == 3
    theirs.eval(), ours.eval()
    with torch.no_grad():
        expected = theirs(torch.from_numpy(IMAGES)).numpy()
    np.testing.assert_allclose(ours(Tensor(IMAGES)).data, expected, rtol=1e-4, atol=1e-5)


def test_batchnorm_state_dict_matches_pytorchs_keys_dtypes_and_shapes():
    torch = pytest.importorskip("torch")
    for ours, theirs in ((nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)), (nn.BatchNorm1d(5), torch.nn.BatchNorm1d(5))):
        mine, other = ours.state_dict(), theirs.state_dict()
        assert list(mine) == list(other)
        for key in mine:
            assert mine[key].shape == tuple(other[key].shape), key
            assert mine[key].dtype == other[key].numpy().dtype, key


def test_from_torch_and_to_torch_convert_state_dicts_without_files():
    torch = pytest.importorskip("torch")
    ours = train_ours(small_cnn(nn))
    theirs = small_cnn(torch.nn)
    theirs.load_state_dict(io.to_torch(ours))  # a Module or its state dict
    assert all(isinstance(v, torch.Tensor) for v in io.to_torch(ours.state_dict()).values())
    back = small_cnn(nn)
    back.load_state_dict(io.from_torch(theirs))  # a torch Module or its state dict
    assert_trees_identical(OrderedDict(back.state_dict()), ours.state_dict())
    nested = io.from_torch({"model": theirs.state_dict(), "epoch": 3})
    assert nested["epoch"] == 3 and isinstance(nested["model"]["0.weight"], np.ndarray)
    converted = io.to_torch({"model": ours.state_dict(), "epoch": 3})
    assert converted["epoch"] == 3 and converted["model"]["1.num_batches_tracked"].dtype == torch.int64
    with pytest.raises(TypeError, match=r"'w' is a torch.bfloat16 tensor, which numpy cannot hold"):
        io.from_torch({"w": torch.ones(2, dtype=torch.bfloat16)})
    with pytest.raises(TypeError, match=r"from_torch takes a Module or a state dict"):
        io.from_torch([torch.ones(2)])


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
