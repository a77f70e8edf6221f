"""Checkpoints: named arrays in a ``.npz`` file, written atomically, read without pickle.

`save` writes every array plus a manifest (format, version, each name's shape and dtype) to a
temporary file in the destination folder, fsyncs it and renames it over the destination, so a
crash leaves either the old checkpoint or the new one, never half a file. `load` reads with
``allow_pickle=False`` (a file holding pickled objects is refused, nothing in it is executed)
and checks every array against the manifest.
"""
from __future__ import annotations

import errno
import json
import math
import os
import secrets
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ["save", "load", "CheckpointError"]

FORMAT = "tinygrad_cnn checkpoint"
VERSION = 1
MANIFEST = "__manifest__"
SEPARATOR = "/"
ALLOWED_KINDS = "biuf"  # bool, integers, floats: never objects


class CheckpointError(ValueError):
    """A checkpoint file that is corrupt, truncated, tampered with or of another format."""


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> OrderedDict[str, np.ndarray]:
    flat: OrderedDict[str, np.ndarray] = OrderedDict()
    for key, value in tree.items():
        if (not isinstance(key, str) or not key or SEPARATOR in key or key == MANIFEST
                or key.endswith(".npy")):  # numpy's .npz reader would confuse 'w.npy' with 'w'
            raise ValueError(f"checkpoint names must be non-empty strings without {SEPARATOR!r} that do "
                             f"not end in '.npy', got {key!r}")
        if isinstance(value, Mapping):
            flat.update(_flatten(value, prefix + key + SEPARATOR))
            continue
        array = np.asarray(value.data if hasattr(value, "data") and not isinstance(value, np.ndarray) else value)
        if array.dtype.kind not in ALLOWED_KINDS:
            raise TypeError(f"checkpoint entry {prefix + key!r} has dtype {array.dtype}; only bool, "
                            "integer and float arrays can be saved")
        flat[prefix + key] = array
    return flat


def _unflatten(flat: Mapping[str, np.ndarray]) -> OrderedDict[str, Any]:
    """'model/0.weight' -> tree['model']['0.weight']; a name that is both an array and a folder
    ('a' and 'a/b') is a CheckpointError."""
    tree: OrderedDict[str, Any] = OrderedDict()
    for name, array in flat.items():
        node = tree
        *parents, leaf = name.split(SEPARATOR)
        for part in parents:
            node = node.setdefault(part, OrderedDict())
            if not isinstance(node, OrderedDict):
                raise CheckpointError(f"checkpoint names {name!r} under an array of the same name")
        if leaf in node:
            raise CheckpointError(f"checkpoint names {name!r} both as an array and as a folder")
        node[leaf] = array
    return tree


def _path(path: Any, function: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{function}: path must be a str or os.PathLike, got {type(path).__name__} {path!r:.40}")
    return Path(path)


def save(module_or_dict: Any, path: str | os.PathLike[str]) -> None:
    """Save a Module's state dict, or a (nested) dict of arrays, to `path` atomically (empty
    nested dicts hold no arrays and are not kept)."""
    tree = module_or_dict.state_dict() if hasattr(module_or_dict, "state_dict") else module_or_dict
    if not isinstance(tree, Mapping):
        raise TypeError(f"save takes a Module or a dict of arrays, got {type(module_or_dict).__name__}")
    flat = _flatten(tree)
    manifest = {"format": FORMAT, "version": VERSION,
                "arrays": {name: {"shape": list(a.shape), "dtype": a.dtype.str} for name, a in flat.items()}}
    path = _path(path, "save")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"cannot save a checkpoint to {path}: the folder {folder} "
                                "does not exist", str(folder))
    # Like mkstemp, but created with mode 0o666 so the umask applies (mkstemp's 0600 would make
    # every checkpoint private).
    temporary = folder / f".{path.name}.{secrets.token_hex(8)}.tmp"
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as file:
            # The .npz layout (one .npy member per array), written member by member rather than
            # with np.savez, whose own keyword arguments would swallow entries named 'file' or
            # 'allow_pickle'.
            with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                for name, array in [(MANIFEST, np.array(json.dumps(manifest))), *flat.items()]:
                    with archive.open(name + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        directory = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)


def _check_member(path: Path, archive: zipfile.ZipFile, name: str, spec: Any) -> None:
    """Read the .npy header of member `name` (not its data) and check it against the manifest's
    entry and the member's size in the zip directory: an object (pickled) array, a shape or
    dtype other than declared, or more or fewer bytes than the header declares is refused
    before any data is read, so a hostile header cannot make load allocate or parse more."""
    if (not isinstance(spec, dict) or not isinstance(spec.get("dtype"), str)
            or not isinstance(spec.get("shape"), list)
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in spec["shape"])):
        raise CheckpointError(f"{path}: unreadable checkpoint: the manifest's entry for {name!r} is malformed")
    member = name + ".npy" if name + ".npy" in archive.namelist() else name
    with archive.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise CheckpointError(f"{path}: array {name!r} has .npy format version {version}, not 1.0 or 2.0")
        shape, _, dtype = readers[version](stream)
        header_size = stream.tell()
    if dtype.hasobject or dtype.kind not in ALLOWED_KINDS:
        raise CheckpointError(f"{path}: array {name!r} has dtype {dtype} (an object array holds pickled "
                              "Python objects: refused, never unpickled)" if dtype.hasobject
                              else f"{path}: array {name!r} has dtype {dtype}")
    if list(shape) != spec["shape"] or dtype.str != spec["dtype"]:
        raise CheckpointError(f"{path}: array {name!r} is {dtype.str} {tuple(shape)}, the manifest declares "
                              f"{spec['dtype']} {tuple(spec['shape'])}")
    declared = dtype.itemsize * math.prod(shape)
    stored = archive.getinfo(member).file_size - header_size
    if stored != declared:
        raise CheckpointError(f"{path}: member {member!r} holds {stored} bytes of array data, but its header "
                              f"declares {dtype.str} {tuple(shape)} ({declared} bytes)")


def load(path: str | os.PathLike[str]) -> OrderedDict[str, Any]:
    """Read a checkpoint written by `save` and return its (nested) dict of arrays.

    Raises CheckpointError for anything that is not an intact checkpoint: not a zip, truncated,
    a corrupted member (CRC), a missing or unreadable manifest, a pickled or object array, an
    array whose name, shape or dtype differs from the manifest, or a member holding more or
    fewer bytes than its header declares (each checked before the member's data is read)."""
    path = _path(path, "load")
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "no checkpoint file at this path", str(path))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "a folder, not a checkpoint file", str(path))
    try:
        with open(path, "rb") as file:
            head = file.read(6)
        if head.startswith(b"\x80"):  # what pickle.dump writes first
            raise CheckpointError(f"{path}: a pickle file, not a checkpoint: refused, never unpickled")
        if not (head.startswith(b"PK") or head.startswith(b"\x93NUMPY")):  # zip (.npz) or .npy
            raise CheckpointError(f"{path}: corrupt or truncated checkpoint: not a zip archive (.npz) "
                                  f"({path.stat().st_size} bytes starting {head!r})")
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{path}: a single .npy array, not a tinygrad_cnn checkpoint (.npz)")
        with loaded as archive:
            names = [n for n in archive.files if n != MANIFEST]
            if MANIFEST not in archive.files:
                raise CheckpointError(f"{path}: no manifest: not a tinygrad_cnn checkpoint")
            manifest_array = archive[MANIFEST]
            if not isinstance(manifest_array, np.ndarray) or manifest_array.dtype.kind != "U":
                raise CheckpointError(f"{path}: the manifest is not a text array")
            manifest = json.loads(str(manifest_array))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise CheckpointError(f"{path}: the manifest does not describe a tinygrad_cnn checkpoint")
            if manifest.get("version") != VERSION:
                raise CheckpointError(f"{path}: checkpoint format version {manifest.get('version')!r}, "
                                      f"this tinygrad_cnn reads version {VERSION}")
            declared = manifest.get("arrays", {})
            if not isinstance(declared, dict):
                raise CheckpointError(f"{path}: unreadable checkpoint: the manifest's 'arrays' is not a table")
            missing, extra = sorted(set(declared) - set(names)), sorted(set(names) - set(declared))
            if missing or extra:
                raise CheckpointError(f"{path}: arrays differ from the manifest: missing {missing}, "
                                      f"not declared {extra}")
            flat: OrderedDict[str, np.ndarray] = OrderedDict()
            for name in declared:
                _check_member(path, archive.zip, name, declared[name])  # before reading its data
                array = archive[name]
                if not isinstance(array, np.ndarray):  # numpy returns non-.npy members as bytes
                    raise CheckpointError(f"{path}: member {name!r} is not an .npy array")
                spec = declared[name]
                if list(array.shape) != spec["shape"] or array.dtype.str != spec["dtype"]:
                    raise CheckpointError(
                        f"{path}: array {name!r} is {array.dtype.str} {array.shape}, the manifest "
                        f"declares {spec['dtype']} {tuple(spec['shape'])}")
                if array.dtype.kind not in ALLOWED_KINDS:
                    raise CheckpointError(f"{path}: array {name!r} has dtype {array.dtype}")
                flat[name] = array
            return _unflatten(flat)
    except CheckpointError:
        raise
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except ValueError as error:  # numpy refusing a pickled (object) array, a bad header, bad JSON
        if path.stat().st_size < 22:  # smaller than an empty zip archive
            raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({path.stat().st_size} bytes)") from None
        raise CheckpointError(f"{path}: unreadable checkpoint: {error}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, TypeError) as error:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint: {error}") from None
