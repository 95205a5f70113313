"""hinas: memory-efficient hierarchical neural architecture search for image restoration.

The Python API, imported on first use so that `import hinas` stays light:

- ``hinas.search(cfg, data, out)`` → :class:`~hinas.genotype.Genotype`: search an architecture
  (the function :func:`hinas.search.search`; ``cfg`` from ``hinas.config.resolve("denoise",
  "cpu")``);
- ``hinas.train(cfg, data, out, genotype)`` → :class:`~hinas.models.ModelSpec`: train it
  (:func:`hinas.train.train`);
- ``hinas.load_model(folder)`` → the trained ``torch.nn.Module`` (:func:`hinas.models.load_model`);
- ``hinas.list_models()`` → the registered architecture names;
- ``hinas.load_pretrained(name)`` → a pretrained model shipped with hinas (``hinas models``;
  :func:`hinas.pretrained.load_pretrained`);
- ``hinas.restore_image(model, array)`` → the restored uint8 image
  (:func:`hinas.restore.restore_image`).

``hinas.search`` and ``hinas.train`` are also the modules of those jobs: calling the module calls
its job function of the same name.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import types

__version__ = "0.1.0"

_API = {"load_model": "hinas.models", "list_models": "hinas.architectures",
        "load_pretrained": "hinas.pretrained", "restore_image": "hinas.restore",
        "search": "hinas.search", "train": "hinas.train"}
_JOBS = ("search", "train")

__all__ = ["__version__", *_API]


class _Job(types.ModuleType):
    """A job module (`hinas.search`, `hinas.train`) that can be called as its job function."""

    @property
    def _function(self):
        return getattr(self, self.__name__.rpartition(".")[2])

    def __call__(self, *args, **kwargs):
        return self._function(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self._function)


class _Package(types.ModuleType):
    """The `hinas` package: marks the job modules callable as the import system attaches them."""

    def __setattr__(self, name: str, value) -> None:
        if name in _JOBS and isinstance(value, types.ModuleType):
            value.__class__ = _Job
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    """The lazily imported top-level API (see the module docstring)."""
    if name not in _API:
        raise AttributeError(f"module 'hinas' has no attribute {name!r}")
    module = importlib.import_module(_API[name])
    return module if name in _JOBS else getattr(module, name)


def __dir__() -> list[str]:
    """Module attributes plus the lazily imported API, for tab completion."""
    return sorted({*globals(), *__all__})
