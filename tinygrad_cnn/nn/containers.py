"""Containers, as torch.nn's: `ModuleList` and `Sequential` hold modules in order, named '0', '1',
... (or, for a Sequential made from an OrderedDict, by its keys)."""
from __future__ import annotations

import numbers
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Iterator

from tinygrad_cnn.nn.module import Module

__all__ = ["ModuleList", "Sequential"]


class ModuleList(Module):
    """Modules held in order and named '0', '1', ... (a plain list attribute is not searched);
    append, extend and insert as a list's."""

    def __init__(self, modules: Any = ()) -> None:
        self.extend(modules)

    def append(self, module: Module) -> ModuleList:
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__} takes Modules, got {type(module).__name__} at position {len(self)}")
        setattr(self, str(len(self)), module)
        return self

    def extend(self, modules: Any) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__} takes Modules, got {type(module).__name__}")
        children = list(self)
        children.insert(index, module)
        for name, _ in list(self.named_children()):
            delattr(self, name)
        self.extend(children)

    def __iter__(self) -> Iterator[Module]:
        return (child for _, child in self.named_children())

    def __len__(self) -> int:
        return len(list(self.named_children()))

    def __getitem__(self, index: int | slice) -> Any:
        children = list(self)
        return type(self)(children[index]) if isinstance(index, slice) else children[index]

    def __setitem__(self, index: int, module: Module) -> None:
        """Replace the module at `index` (negative counts from the end), under its name."""
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__} takes Modules, got {type(module).__name__}")
        setattr(self, self._name_at(index), module)

    def __delitem__(self, index: int | slice) -> None:
        """Remove the module(s) at `index`; the rest are renumbered '0', '1', ..., as PyTorch's."""
        names = [name for name, _ in self.named_children()]
        doomed = set(names[index]) if isinstance(index, slice) else {self._name_at(index)}
        kept = [child for name, child in self.named_children() if name not in doomed]
        for name in names:
            delattr(self, name)
        self.extend(kept)

    def _name_at(self, index: int) -> str:
        names = [name for name, _ in self.named_children()]
        if isinstance(index, bool) or not isinstance(index, numbers.Integral) or not -len(names) <= index < len(names):
            raise IndexError(f"index {index!r} is out of range for {type(self).__name__} of length {len(names)}")
        return names[int(index)]


class Sequential(ModuleList):
    """Layers applied in order; they are named '0', '1', ... (so parameters are '0.weight', ...)."""

    def __init__(self, *layers: Module) -> None:
        if len(layers) == 1 and isinstance(layers[0], Mapping):  # an OrderedDict: the layers under its names
            for name, layer in layers[0].items():
                self.add_module(str(name), layer)
            return
        super().__init__(layers[0] if len(layers) == 1 and isinstance(layers[0], list) else layers)

    def __getitem__(self, index: int | slice) -> Any:
        """The layer at `index`, or a Sequential of a slice of them under their names."""
        if isinstance(index, slice):
            return type(self)(OrderedDict(list(self.named_children())[index]))
        return list(self)[index]

    def forward(self, x: Any) -> Any:
        for layer in self:
            x = layer(x)
        return x
