"""Checkpoints: safetensors files (the format PyTorch and the Hugging Face tools read), written
atomically, read without pickle; the previous ``.npz`` format is still read (and written for a
path ending in ``.npz``).

`save` flattens a nested dict into dotted names, as PyTorch's state-dict keys ('model.0.weight'):
arrays and Tensors become tensors, other values (numbers, strings, bools, None, lists) JSON in
the header's metadata, with the nesting and the order of the keys. It writes a temporary file
beside the destination, fsyncs it and renames it over the destination: a crash leaves the old
checkpoint or the new one, never half a file. `load` checks the header (its length, JSON, every
dtype, shape and offset) against the file's real size before reading any data; a file that fails
a check is a `CheckpointError` saying what it is. A safetensors file written elsewhere loads as
a flat dict of arrays, ready for `Module.load_state_dict`.
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
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["save", "load", "from_torch", "to_torch", "CheckpointError"]

FORMAT = "tinygrad_cnn checkpoint"  # the .npz manifest's format
VERSION = 1                         # the .npz manifest's version
MANIFEST = "__manifest__"
SEPARATOR = "/"                     # .npz names
ALLOWED_KINDS = "biuf"  # bool, integers, floats: never objects
META_KEY = "tinygrad_cnn"           # our entry in a safetensors header's __metadata__
META_VERSION = 1
MAX_HEADER = 100_000_000            # safetensors' own limit on the JSON header
DTYPES = {"BOOL": "|b1", "U8": "|u1", "I8": "|i1", "U16": "<u2", "I16": "<i2", "F16": "<f2",
          "U32": "<u4", "I32": "<i4", "F32": "<f4", "U64": "<u8", "I64": "<i8", "F64": "<f8"}


class CheckpointError(ValueError):
    """A checkpoint file that is corrupt, truncated, tampered with or of another format."""


def _path(path: Any, function: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{function}: path must be a str or os.PathLike, got {type(path).__name__} {path!r:.40}")
    return Path(path)


def _array_of(value: Any, name: str) -> np.ndarray | None:
    """The array of a Tensor, numpy array or numpy scalar (None for any other value), checked."""
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
    elif isinstance(getattr(value, "data", None), np.ndarray):  # a Tensor
        array = value.data
    else:
        return None
    if array.dtype.kind not in ALLOWED_KINDS:
        raise TypeError(f"checkpoint entry {name!r} has dtype {array.dtype}; only bool, integer and float arrays "
                        "can be saved")
    return array


def _plain(value: Any) -> bool:
    """Whether `value` is JSON made of None, bools, numbers, strings, lists and str-keyed dicts."""
    return value is None or isinstance(value, (bool, int, float, str)) or (
        isinstance(value, (list, tuple)) and all(map(_plain, value))) or (
        isinstance(value, dict) and all(isinstance(k, str) and _plain(v) for k, v in value.items()))


def save(module_or_dict: Any, path: str | os.PathLike[str]) -> None:
    """Save a Module's state dict, or a nested dict, to `path` atomically: safetensors, or for a path
    ending in ``.npz`` the previous format (arrays only). Empty nested dicts are not kept."""
    tree = module_or_dict.state_dict() if hasattr(module_or_dict, "state_dict") else module_or_dict
    if not isinstance(tree, Mapping):
        raise TypeError(f"save takes a Module or a dict of arrays, got {type(module_or_dict).__name__}")
    path = _path(path, "save")
    if path.suffix == ".npz":
        flat = _flatten_npz(tree)
        _atomic_write(path, lambda file: _write_npz(file, flat))
        return
    tensors, values, entries = OrderedDict(), {}, []
    for keys, value in _leaves(tree, ()):
        name = ".".join(keys)
        if name in tensors or name in values or name == "__metadata__":
            raise ValueError(f"checkpoint names must differ once joined by dots, and not be '__metadata__': {name!r}")
        array = _array_of(value, name)
        if array is not None:
            tensors[name] = np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")  # (keeps 0-d)
        elif _plain(value):
            values[name] = value
        else:
            raise TypeError(f"checkpoint entry {name!r} is a {type(value).__name__}: save arrays, Tensors, and "
                            "numbers, strings, bools, None or lists of them")
        entries.append(list(keys))
    metadata = {"format": "pt", META_KEY: json.dumps({"version": META_VERSION, "entries": entries, "values": values})}
    from safetensors.numpy import save as serialize  # (save_file would write its own file, mode 0600)
    data = serialize(tensors, metadata=metadata)
    _atomic_write(path, lambda file: file.write(data))


def _leaves(tree: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key, value in tree.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"checkpoint names must be non-empty strings, got {key!r}")
        if isinstance(value, Mapping):
            yield from _leaves(value, keys + (key,))
        else:
            yield keys + (key,), value


def _atomic_write(path: Path, write: Callable[[Any], Any]) -> None:
    """write(file) fills a temporary file beside `path`, fsynced, then renamed over `path`."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"cannot save a checkpoint to {path}: the folder {folder} "
                                "does not exist", str(folder))
    # Like mkstemp, but mode 0o666 so the umask applies (mkstemp's 0600 makes every checkpoint private).
    temporary = folder / f".{path.name}.{secrets.token_hex(8)}.tmp"
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError:
        pass  # a file system that cannot fsync a folder


def load(path: str | os.PathLike[str]) -> OrderedDict[str, Any]:
    """Read a checkpoint (safetensors, or the previous .npz, told apart by their content) and
    return its nested dict of arrays and values. Anything else is a CheckpointError: a truncated
    file, a wrong header length, offsets past the end, an unknown dtype, a pickle, a text file..."""
    path = _path(path, "load")
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "no checkpoint file at this path", str(path))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "a folder, not a checkpoint file", str(path))
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        head = file.read(9)
        if head.startswith(b"PK") or head.startswith(b"\x93NUMPY"):  # zip (.npz) or .npy
            file.close()
            return _load_npz(path)
        if head.startswith(b"\x80") and head[8:] != b"{":  # a pickle's 0x80, not a header length's byte
            raise CheckpointError(f"{path}: a pickle file, not a checkpoint: refused, never unpickled")
        if len(head) < 8:
            raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({size} bytes): a safetensors file "
                                  "starts with an 8-byte header length")
        file.seek(8)
        return _load_safetensors(path, file, size, int.from_bytes(head[:8], "little"))


def _load_safetensors(path: Path, file: Any, size: int, length: int) -> OrderedDict[str, Any]:
    if length > size - 8:
        head = (length.to_bytes(8, "little") + file.read(32)).decode("latin-1")
        if all(c.isprintable() or c in "\t\r\n" for c in head):
            raise CheckpointError(f"{path}: a text file, not a checkpoint (it starts {head[:32]!r})")
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint: its header length says {length} bytes, "
                              f"but only {size - 8} bytes follow it (wrong header length)")
    if length > MAX_HEADER:
        raise CheckpointError(f"{path}: unreadable checkpoint: a header of {length} bytes (the limit is {MAX_HEADER})")
    try:  # (UnicodeDecodeError and JSONDecodeError are ValueErrors; deep nesting a RecursionError)
        header = json.loads(file.read(length).decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"{path}: unreadable checkpoint: the header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: unreadable checkpoint: the header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise CheckpointError(f"{path}: unreadable checkpoint: __metadata__ is not a table of strings")
    data_size, specs = size - 8 - length, []
    for name, spec in header.items():
        if (not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}
                or not isinstance(spec["dtype"], str) or not isinstance(spec["shape"], list)
                or not isinstance(spec["data_offsets"], list) or len(spec["data_offsets"]) != 2
                or not all(type(n) is int and n >= 0 for n in spec["shape"] + spec["data_offsets"])):
            raise CheckpointError(f"{path}: unreadable checkpoint: the header's entry for {name!r} is malformed")
        if spec["dtype"] not in DTYPES:
            raise CheckpointError(f"{path}: tensor {name!r} has an unknown dtype {spec['dtype']!r} (numpy holds "
                                  f"{', '.join(DTYPES)}: convert a bfloat16 tensor to float32 before saving)")
        dtype, (begin, end) = np.dtype(DTYPES[spec["dtype"]]), spec["data_offsets"]
        if end > data_size:
            raise CheckpointError(f"{path}: corrupt or truncated checkpoint: tensor {name!r} ends at byte {end} of "
                                  f"the data, which holds {data_size} bytes (offsets past the end)")
        if end - begin != dtype.itemsize * math.prod(spec["shape"]) or len(spec["shape"]) > 32 or \
                dtype.itemsize * math.prod(n or 1 for n in spec["shape"]) >= 2**62:  # (so numpy can describe it)
            raise CheckpointError(f"{path}: unreadable checkpoint: tensor {name!r} is {spec['dtype']} "
                                  f"{tuple(spec['shape'])}, but its offsets span {end - begin} bytes")
        specs.append((begin, end, name, dtype, tuple(spec["shape"])))
    position = 0
    for begin, end, name, _, _ in sorted(specs):
        if begin != position:
            raise CheckpointError(f"{path}: unreadable checkpoint: tensor {name!r} starts at byte {begin} of the "
                                  f"data, not at {position} (tensors must follow each other)")
        position = end
    if position != data_size:
        raise CheckpointError(f"{path}: corrupt checkpoint: {data_size - position} bytes after the last tensor")
    arrays = {}
    for begin, end, name, dtype, shape in sorted(specs):  # one pass over the data, in file order
        array = np.empty(shape, dtype)
        if end > begin and file.readinto(memoryview(array.reshape(-1).view(np.uint8))) != end - begin:
            raise CheckpointError(f"{path}: corrupt or truncated checkpoint: the file shrank while being read")
        if dtype.kind == "b" and array.view(np.uint8).max(initial=0) > 1:
            raise CheckpointError(f"{path}: corrupt checkpoint: bool tensor {name!r} holds bytes other than 0 and 1")
        arrays[name] = array.astype(dtype.newbyteorder("="), copy=False)
    ours = (metadata or {}).get(META_KEY)
    if ours is None:  # written elsewhere: the tensors alone, in the header's order
        return OrderedDict((name, arrays[name]) for name in header)
    return _nest(path, ours, arrays)


def _nest(path: Path, text: str, arrays: dict[str, np.ndarray]) -> OrderedDict[str, Any]:
    """The nested dict that our metadata's entries (key paths, in order) and values describe."""
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"{path}: unreadable checkpoint: our metadata is not JSON ({error})") from None
    version = meta.get("version") if isinstance(meta, dict) else None
    if version != META_VERSION:
        raise CheckpointError(f"{path}: checkpoint metadata version {version!r}, this tinygrad_cnn reads "
                              f"{META_VERSION}")
    entries, values = meta.get("entries"), meta.get("values")
    if not (isinstance(entries, list) and isinstance(values, dict) and all(
            isinstance(keys, list) and keys and all(isinstance(k, str) and k for k in keys) for keys in entries)):
        raise CheckpointError(f"{path}: unreadable checkpoint: our metadata's entries are malformed")
    names = [".".join(keys) for keys in entries]
    if sorted(names) != sorted(list(arrays) + list(values)) or len(set(names)) != len(names):
        raise CheckpointError(f"{path}: the tensors and values differ from the metadata's entries: "
                              f"missing {sorted((set(arrays) | set(values)) - set(names))}, "
                              f"not stored {sorted(set(names) - set(arrays) - set(values))}")
    return _nested(path, [(keys, arrays[n] if n in arrays else values[n]) for keys, n in zip(entries, names)])


def _nested(path: Path, leaves: list[tuple[list[str], Any]]) -> OrderedDict[str, Any]:
    """(key path, value) pairs, in order, as a nested dict ('a' both a value and a folder: an error)."""
    tree: OrderedDict[str, Any] = OrderedDict()
    for keys, value in leaves:
        node = tree
        for part in keys[:-1]:
            node = node.setdefault(part, OrderedDict())
            if not isinstance(node, OrderedDict):
                raise CheckpointError(f"{path}: checkpoint names {keys} under a value of the same name")
        if keys[-1] in node:
            raise CheckpointError(f"{path}: checkpoint names {keys} both as a value and as a folder")
        node[keys[-1]] = value
    return tree


# ---- PyTorch ---------------------------------------------------------------------------------
def _torch(function: str, state_dict: Any) -> tuple[Any, Mapping[str, Any]]:
    """(torch, `state_dict` itself or a Module's state dict), checked before torch is imported."""
    tree = state_dict if isinstance(state_dict, Mapping) else getattr(state_dict, "state_dict", lambda: None)()
    if not isinstance(tree, Mapping):
        raise TypeError(f"{function} takes a Module or a state dict (a dict of tensors), got "
                        f"{type(state_dict).__name__}")
    try:
        import torch
    except ImportError:
        raise ImportError(f"io.{function} needs PyTorch: pip install torch") from None
    return torch, tree


def from_torch(state_dict: Any) -> OrderedDict[str, Any]:
    """A PyTorch state dict (or module, or nested dict) with every torch.Tensor as a numpy array
    (a copy), the keys and other values unchanged: ready for `Module.load_state_dict`."""
    torch, tree = _torch("from_torch", state_dict)
    for key, value in tree.items():
        if isinstance(value, torch.Tensor) and value.dtype in (torch.bfloat16, torch.complex64, torch.complex128):
            raise TypeError(f"from_torch: {key!r} is a {value.dtype} tensor, which numpy cannot hold; convert it "
                            "with .float() first")
    return OrderedDict((k, from_torch(v) if isinstance(v, Mapping) else v.detach().cpu().numpy().copy()
                        if isinstance(v, torch.Tensor) else v) for k, v in tree.items())


def to_torch(state_dict: Any) -> OrderedDict[str, Any]:
    """Our state dict (or Module, or nested dict) with every array and Tensor as a torch.Tensor
    (a copy), the keys and other values unchanged: ready for ``torch.nn.Module.load_state_dict``."""
    torch, tree = _torch("to_torch", state_dict)
    result: OrderedDict[str, Any] = OrderedDict()
    for key, value in tree.items():
        array = None if isinstance(value, Mapping) else _array_of(value, str(key))
        result[key] = to_torch(value) if isinstance(value, Mapping) else value if array is None else \
            torch.from_numpy(np.array(array, dtype=array.dtype.newbyteorder("="), copy=True))
    return result


# ---- the previous format: .npz with a manifest -------------------------------------------------
def _flatten_npz(tree: Mapping[str, Any]) -> OrderedDict[str, np.ndarray]:
    flat: OrderedDict[str, np.ndarray] = OrderedDict()
    for keys, value in _leaves(tree, ()):
        for key in keys:  # numpy's .npz reader would confuse 'w.npy' with 'w'
            if SEPARATOR in key or key == MANIFEST or key.endswith(".npy"):
                raise ValueError(f"checkpoint names must be non-empty strings without {SEPARATOR!r} that do "
                                 f"not end in '.npy', got {key!r}")
        name = SEPARATOR.join(keys)
        array = _array_of(value, name)
        flat[name] = array if array is not None else _array_of(np.asarray(value), name)
    return flat


def _write_npz(file: Any, flat: Mapping[str, np.ndarray]) -> None:
    # The .npz layout (one .npy member per array), written member by member rather than with
    # np.savez, whose own keyword arguments would swallow entries named 'file' or 'allow_pickle'.
    manifest = {"format": FORMAT, "version": VERSION,
                "arrays": {name: {"shape": list(a.shape), "dtype": a.dtype.str} for name, a in flat.items()}}
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in [(MANIFEST, np.array(json.dumps(manifest))), *flat.items()]:
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _check_member(path: Path, archive: zipfile.ZipFile, name: str, spec: Any) -> None:
    """Check member `name`'s .npy header (not its data) against the manifest and the zip's sizes:
    a hostile header is refused before load allocates or parses anything more."""
    if not (isinstance(spec, dict) and isinstance(spec.get("dtype"), str) and isinstance(spec.get("shape"), list)
            and all(type(n) is int and n >= 0 for n in spec["shape"])):
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


def _load_npz(path: Path) -> OrderedDict[str, Any]:
    """A checkpoint of the previous format, read with ``allow_pickle=False`` and every member
    checked against the manifest before its data is read."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{path}: a single .npy array, not a tinygrad_cnn checkpoint (.npz)")
        with loaded as archive:
            names = [n for n in archive.files if n != MANIFEST]
            if any(n == "data.pkl" or n.endswith("/data.pkl") for n in archive.zip.namelist()):
                raise CheckpointError(f"{path}: a PyTorch torch.save file (pickled): refused, never unpickled; "
                                      "save it with safetensors.torch.save_file instead")
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
            leaves = []
            for name in declared:
                _check_member(path, archive.zip, name, declared[name])  # before reading its data
                array = archive[name]
                if not isinstance(array, np.ndarray):  # numpy returns non-.npy members as bytes
                    raise CheckpointError(f"{path}: member {name!r} is not an .npy array")
                leaves.append((name.split(SEPARATOR), array))  # 'model/0.weight' -> tree['model']['0.weight']
            return _nested(path, leaves)
    except (CheckpointError, FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except ValueError as error:  # numpy refusing a pickled (object) array, a bad header, bad JSON
        if path.stat().st_size < 22:  # smaller than an empty zip archive
            raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({path.stat().st_size} bytes)") from None
        raise CheckpointError(f"{path}: unreadable checkpoint: {error}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, TypeError) as error:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint: {error}") from None
