"""hinas: memory-efficient hierarchical neural architecture search for image restoration.

The Python API, imported on first use so that `import hinas` stays light:

- ``hinas.search(cfg, data, out)`` → :class:`~hinas.space.genotype.Genotype`: search an
  architecture (:func:`hinas.jobs.search.search`; ``cfg`` from
  ``hinas.config.resolve("denoise", "cpu")``);
- ``hinas.train(cfg, data, out, genotype)`` → :class:`~hinas.models.folder.ModelSpec`: train it
  (:func:`hinas.jobs.train.train`);
- ``hinas.load_model(folder)`` → the trained ``torch.nn.Module``
  (:func:`hinas.models.folder.load_model`);
- ``hinas.list_models()`` → the registered architecture names;
- ``hinas.load_pretrained(name)`` → a pretrained model shipped with hinas (``hinas models``;
  :func:`hinas.models.pretrained.load_pretrained`);
- ``hinas.restore_image(model, array)`` → the restored uint8 image
  (:func:`hinas.jobs.restore.restore_image`).

The package shows its layers, each importing only from those before it: the foundation
(``config``, ``errors``, ``registry``, ``io``), ``measures``, ``data``, ``space`` (the searched
space and the method), ``models``, ``runtime`` (what the jobs share), ``jobs`` (search, train,
evaluate, restore; no job imports another) and the command line and demo on top
(docs/architecture.md).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {"load_model": "hinas.models.folder", "list_models": "hinas.models.architectures",
        "load_pretrained": "hinas.models.pretrained", "restore_image": "hinas.jobs.restore",
        "search": "hinas.jobs.search", "train": "hinas.jobs.train"}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    """The lazily imported top-level API (see the module docstring)."""
    if name not in _API:
        raise AttributeError(f"module 'hinas' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)


def __dir__() -> list[str]:
    """Module attributes plus the lazily imported API, for tab completion."""
    return sorted({*globals(), *__all__})
