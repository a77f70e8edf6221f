"""Devices, as PyTorch's, for a framework whose arrays all live in this process's memory: the
one device is the CPU. `device("cpu")` is what ``Tensor.device`` says, and every ``device=``
argument (``to``, the factories, ``tensor``) accepts it, so that a script written for PyTorch
(``device = "cuda" if torch.cuda.is_available() else "cpu"``) runs unchanged; any other device
is a ValueError that says so, rather than a silent copy on the CPU.
"""
from __future__ import annotations

from typing import Any

__all__ = ["device", "cuda"]

# torch's device types: a string starting with one of these names a device, not a dtype
KNOWN = ("cpu", "cuda", "mps", "xpu", "xla", "meta", "hip", "ipu", "mtia", "privateuseone")


class device:  # noqa: N801 -- torch.device
    """torch.device: ``device("cpu")``, ``device("cpu:0")``, ``device("cpu", 0)`` or a device."""

    __slots__ = ("type", "index")

    def __init__(self, type: Any, index: int | None = None) -> None:  # noqa: A002 -- torch's name
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string like 'cpu' or a device, got {type!r}")
        name, _, number = type.partition(":")
        if number:
            if index is not None or not number.isdigit():
                raise ValueError(f"device: invalid device string {type!r}")
            index = int(number)
        if name != "cpu":
            known = f"a {name} device" if name in KNOWN else f"device {type!r}"
            raise ValueError(f"tinygrad_cnn runs on the CPU only (numpy arrays in memory): {known} is not "
                             "available; use 'cpu'")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index != 0):
            raise ValueError(f"device: the CPU is device index 0 (or None), got {index!r}")
        object.__setattr__(self, "type", "cpu")
        object.__setattr__(self, "index", index)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a device is immutable")

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, device) and (other.type, other.index) == (self.type, self.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __repr__(self) -> str:
        return f"device(type={self.type!r}" + ("" if self.index is None else f", index={self.index}") + ")"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


CPU = device("cpu")


def is_device(value: Any) -> bool:
    """Whether a positional argument of ``to`` names a device (else it names a dtype)."""
    return isinstance(value, device) or isinstance(value, str) and value.partition(":")[0] in KNOWN


def check(value: Any) -> None:
    """A ``device=`` argument: None or the CPU (anything else raises, see `device`)."""
    if value is not None:
        device(value)


def to_arguments(owner: str, args: tuple[Any, ...], dtype: Any, to_device: Any) -> Any:
    """The dtype that ``to(*args, dtype=, device=)`` asks for (None: keep it), as PyTorch's
    overloads: ``to(dtype)``, ``to(device, dtype=None)``, ``to(tensor)`` (its dtype), with the
    device checked to be the CPU."""
    from tinygrad_cnn.tensor import Tensor  # here: tensor.py imports this module before Tensor exists
    if len(args) > 2:
        raise TypeError(f"{owner}() takes a device, a dtype or a tensor (and a dtype after a device), got {len(args)} "
                        "arguments")
    for k, arg in enumerate(args):
        if is_device(arg):
            if k or to_device is not None:
                raise TypeError(f"{owner}(): the device comes first and once, got {args!r}")
            to_device = arg
        elif isinstance(arg, Tensor):  # its dtype (its device is the CPU)
            dtype = arg.dtype
        elif dtype is None:
            dtype = arg
        else:
            raise TypeError(f"{owner}(): dtype given twice, got {args!r} and dtype={dtype!r}")
    check(to_device)
    return dtype



class _Cuda:
    """``torch.cuda``'s questions, answered: no CUDA device is available, so ``device = "cuda"
    if tinygrad_cnn.cuda.is_available() else "cpu"`` picks the CPU. The seeding calls a PyTorch
    script makes for CUDA have no generator to seed here, and do nothing."""

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def device_count() -> int:
        return 0

    @staticmethod
    def manual_seed(seed: int) -> None:
        """No CUDA generator to seed (``tinygrad_cnn.manual_seed`` seeds the one there is)."""

    manual_seed_all = manual_seed


cuda = _Cuda()
