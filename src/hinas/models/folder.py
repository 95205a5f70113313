"""The trained-model folder: what was trained (architecture, task, build options, genotype) and its
weights.

`ModelSpec(arch, task, options, genotype).build()` builds any architecture registered in
:mod:`hinas.models.architectures`.

A trained model is a folder (the training run folder) holding

- `model.json`: `{"format": "hinas-model", "version", "arch", "task", "options", "genotype",
  "meta"}` — which architecture, for which task, with which build options;
- `model.safetensors`: the weights (the best ones by validation PSNR);
- `genotype.json` for architectures built from a genotype, and `config.yaml` of the run.

:func:`load_model` rebuilds the network from these files in one call.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hinas import __version__
from hinas.config import MAX_WIDTH, Config, TaskConfig, build_dataclass
from hinas.errors import HinasError, NonFiniteError
from hinas.io import atomic_write, atomic_write_text, read_json
from hinas.models.architectures import MODELS
from hinas.models.fold import fold_batchnorm
from hinas.space.genotype import Genotype

MODEL_FORMAT_VERSION = 1
SPEC_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"
GENOTYPE_FILE = "genotype.json"


def check_task(built_for: TaskConfig, task: TaskConfig, source: str) -> None:
    """Raise HinasError unless a network built for `built_for` can do `task`: a task that runs
    its networks (:meth:`~hinas.tasks.TaskConfig.runs_networks_of`: the same task, or for
    `paired`, the user's own degraded files, any network that keeps the image size), the
    channels and levels the network is built for (the SR scale), and a noise level to tell a
    noise-map network. The noise level may differ. Errors name `source`."""
    problems = []
    if not task.runs_networks_of(built_for):
        problems.append(f"not {task.name!r}")
    elif built_for.network_levels() != task.network_levels():
        problems.append(f"not {task.describe()}")
    if built_for.channels != task.channels:
        problems.append(f"{built_for.channels} channel(s), not {task.channels}")
    if built_for.needs_level and not task.needs_level:
        problems.append(f"a noise-map network must be told its noise level, which the "
                        f"{task.name} task does not say")
    if problems:
        raise HinasError(f"{source}: built for {built_for.describe()} with {built_for.channels} "
                         f"channel(s) ({', '.join(problems)} as asked)")


@dataclass
class ModelSpec:
    """What `model.json` records: the architecture, the task it restores, its build options, the
    genotype (for searched architectures) and provenance (`meta`)."""

    arch: str
    task: TaskConfig
    options: dict[str, Any] = field(default_factory=dict)
    genotype: Genotype | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, arch: str, cfg: Config, genotype: Genotype | None = None,
                    source: str = "genotype", options: dict[str, Any] | None = None) -> ModelSpec:
        """The spec of architecture `arch` trained under `cfg`, with build `options` overriding
        the config's (task and genotype checked; errors name `source`)."""
        entry = MODELS.get(arch)
        entry.check_task(cfg.task)
        if entry.needs_genotype and genotype is None:
            raise HinasError(f"architecture {arch!r} is built from a searched genotype: "
                             f"give --genotype G.json")
        if not entry.needs_genotype and genotype is not None:
            raise HinasError(f"architecture {arch!r} takes no genotype")
        if genotype is not None:
            check_task(genotype.task, cfg.task, source)
        spec = cls(arch, cfg.task, entry.build_options(cfg, options), genotype)
        spec.check_width(source)
        return spec

    def check_width(self, source: str | Path) -> None:
        """Raise HinasError naming `source` if a cell of the genotype, widened by the
        `width_multiplier` option, would be more than MAX_WIDTH nodes wide."""
        if self.genotype is not None:
            widest = max(self.genotype.widths(self.options.get("width_multiplier", 1.0)))
            if widest > MAX_WIDTH:
                raise HinasError(f"{source}: a node width of {widest} (over {MAX_WIDTH}) with "
                                 f"width multiplier {self.options.get('width_multiplier', 1.0)}")

    def build(self) -> nn.Module:
        """A freshly initialised network of this spec, its task as `built_for`."""
        entry = MODELS.get(self.arch)
        entry.check_task(self.task)
        net = entry.build(self.task, self.genotype, **self.options)
        net.built_for = self.task  # what restore_image reads: channels, a noise-map input
        return net

    def to_dict(self) -> dict[str, Any]:
        """The JSON content of model.json (the genotype is referenced by file name)."""
        return {"format": "hinas-model", "version": MODEL_FORMAT_VERSION,
                "hinas_version": __version__, "arch": self.arch, "task": asdict(self.task),
                "options": self.options,
                "genotype": GENOTYPE_FILE if self.genotype is not None else None,
                "weights": WEIGHTS_FILE, "meta": self.meta}

    def save(self, folder: str | Path, net: nn.Module | None = None) -> None:
        """Write model.json (and genotype.json when there is a genotype) into `folder`; with
        `net`, a network of this spec, its weights too: a model folder :func:`load_model`
        reads."""
        folder = Path(folder)
        if self.genotype is not None:
            self.genotype.save(folder / GENOTYPE_FILE)
        atomic_write_text(folder / SPEC_FILE, json.dumps(self.to_dict(), indent=1) + "\n")
        if net is not None:
            save_weights(net, folder / WEIGHTS_FILE)

    @classmethod
    def load(cls, folder: str | Path) -> ModelSpec:
        """Read model.json (and its genotype) from a trained-model folder."""
        folder = Path(folder)
        path = folder / SPEC_FILE
        if not folder.is_dir():
            raise HinasError(f"{folder}: no such model folder")
        if not path.is_file():
            raise HinasError(f"{folder}: not a trained model (no {SPEC_FILE}; "
                             f"train one with `hinas train`)")
        data = read_json(path, "model file")
        if not isinstance(data, dict) or data.get("format") != "hinas-model":
            raise HinasError(f"{path}: not a hinas model file")
        if not isinstance(data.get("version"), int) or data["version"] > MODEL_FORMAT_VERSION:
            raise HinasError(f"{path}: model format version {data.get('version')!r} is not "
                             f"readable by hinas {__version__} (≤ {MODEL_FORMAT_VERSION})")
        try:
            task = build_dataclass(TaskConfig, data["task"], "task")
            task.validate()
            options = data.get("options") or {}
            MODELS.get(data["arch"]).check_options(options)
            meta = data.get("meta") or {}
            if not isinstance(meta, dict):
                raise HinasError(f"meta must be a mapping, got {type(meta).__name__}")
        except (KeyError, TypeError) as err:
            raise HinasError(f"{path}: malformed model file ({err})") from None
        except HinasError as err:
            raise HinasError(f"{path}: {err}") from None
        genotype = _genotype_in(folder, data.get("genotype"), path)
        spec = cls(data["arch"], task, dict(options), genotype, dict(meta))
        spec.check_width(path)
        return spec


def _genotype_in(folder: Path, name: Any, source: Path) -> Genotype | None:
    """The genotype file `name` that model.json names, which must lie inside the model folder."""
    if not name:
        return None
    path = folder / str(name)
    if not isinstance(name, str) or folder.resolve() not in path.resolve().parents:
        raise HinasError(f"{source}: the genotype must be a file inside the model folder, got "
                         f"{name!r}")
    return Genotype.load(path)


def check_finite(tensors: dict[str, torch.Tensor], what: str) -> None:
    """Raise NonFiniteError naming the first tensor of `tensors` that holds NaN or inf."""
    for name, value in tensors.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise NonFiniteError(f"{what} hold non-finite values (NaN or inf; {name})")


def save_weights(model: nn.Module, path: str | Path) -> None:
    """Write `model`'s state dict as safetensors, atomically (NonFiniteError, and nothing
    written, if a weight is NaN or inf)."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    check_finite(tensors, "the weights")
    blob = save(tensors, metadata={"format": "pt", "hinas_version": __version__})
    atomic_write(path, lambda f: f.write(blob))


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load safetensors weights written by :func:`save_weights` into `model` (strict)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.exists():
        raise HinasError(f"{path}: no weights file (is the training finished?)")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise HinasError(f"{path}: unreadable weights ({err})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise HinasError(f"{path}: weights do not fit the architecture ({first})") from None


def load_model(folder: str | Path, device: str | torch.device = "cpu", fold: bool = False
               ) -> nn.Module:
    """The trained network of a model folder (written by `hinas train`), weights loaded, on
    `device`, in eval mode; with `fold`, its inference copy, every conv → BatchNorm folded into
    one conv (:func:`hinas.models.fold.fold_batchnorm`: same output within float rounding,
    faster, not trainable).

    Input contract: a float tensor of shape N×C×H×W with values in [0, 1] (C = the task's
    channels: 1 gray, 3 RGB, in RGB order; any H and W); the output is N×C×(s·H)×(s·W) on the
    same scale, not clipped (s = the SR scale, 1 for denoising). A denoiser takes the noisy image
    itself, an SR model the low-resolution image. :func:`hinas.restore_image` wraps this for a
    uint8 array."""
    model = ModelSpec.load(folder).build()
    load_weights(model, Path(folder) / WEIGHTS_FILE)
    model = model.to(device).eval()
    return fold_batchnorm(model) if fold else model

