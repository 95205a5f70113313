"""Typed configuration: dataclasses for task, search space, search, training and data, loaded from
presets and YAML files, overridable with `key.sub=value`, validated with one-line errors.

A preset file (`src/hinas/presets/<name>.yaml`) has a `common` section and optional `denoise` / `sr`
sections applied on top for the tasks that take them (`preset_section` of :mod:`hinas.tasks`: the
same-size tasks take `denoise`). The resolved `Config` is written into every run folder.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import yaml

from hinas import tasks
from hinas.errors import HinasError
from hinas.errors import check as _check
from hinas.io import atomic_write_text, too_long_number
from hinas.tasks import (  # noqa: F401  (the task's API, as it was before it had a module)
    JPEG_QUALITY,
    SIGMA_SAMPLING,
    STANDARD_QUALITIES,
    STANDARD_SIGMAS,
    TaskConfig,
    check_lq,
    level_text,
)

PRIMITIVES: tuple[str, ...] = (
    "none", "skip_connect", "conv_3x3", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
    "dil_conv_5x5",
)
"""The paper's seven candidate operations, in the column order of α (implemented and checked
in :mod:`hinas.space.ops`, which this torch-free module does not import)."""
LOSSES = ("mse", "mse+ssim", "l1", "l1+ssim")
"""`search.loss` / `train.loss` names (built in :mod:`hinas.measures.losses`)."""
AMP_MODES = ("off", "auto", "bf16", "fp16")
"""`search.amp` / `train.amp` values (see :mod:`hinas.runtime.execution`)."""

TASKS = tuple(tasks.TASKS.names())
"""The restoration tasks, one registered class each (:mod:`hinas.tasks`)."""
LQ_TASKS = tuple(t for t in tasks.TASKS.names() if tasks.TASKS.get(t).takes_files)
"""Tasks whose degraded inputs may be the user's own files (`data.lq`, `--lq`)."""
PRESETS = ("tiny", "cpu", "paper")
DEFAULT_PRESET = "cpu"
OPTIMIZERS = ("sgd", "adamw")
STRATEGIES = ("hinas", "random", "params")
"""`search.strategy`: HiNAS, random search with weight sharing (RSWS), or the zero-cost search
of the most parameters within a cost budget, each a registered
class of :mod:`hinas.runtime.strategies` (which this torch-free module does not import)."""
SCHEDULES = ("cosine", "step", "constant")
"""`train.schedule`: learning-rate schedules (hinas.jobs.train.lr_factor)."""
SELECTIONS = ("alpha", "oneshot", "perturb")
"""`search.select`: how the cells are chosen from a trained supernet (the signals of
hinas.runtime.selection)."""
WIDTH_SELECTIONS = ("viterbi", "oneshot")
"""`search.width`: how the width path is chosen (Viterbi on β, or every path scored one-shot)."""
LEVEL_MODES = ("width", "resolution")
"""`space.levels`: what the outer space's levels differ in (docs/decisions.md §1.2b): `width`
(the paper's, every level at full resolution) or `resolution` (level k at 1/2^k of the start
part's resolution, with its own width factor)."""
START_SCALES = (1, 2, 4)
"""`space.start_scale`: the start part's pixel-unshuffle factor (FFDNet's downsampling; 1: none)."""
MAX_NODES, MAX_LAYERS, MAX_WIDTH, MAX_FACTOR = 16, 64, 2048, 16.0
"""Caps of a search space (and of the build options of a network): far beyond any published
architecture, and low enough that a mistyped or hostile file cannot ask for gigabytes."""
MAX_BATCH = 4096
"""The largest batch (search or training) a config may ask for."""


@dataclass
class SpaceConfig:
    """The hierarchical search space (docs/decisions.md §1): cells of `nodes` nodes, `layers`
    layers, node width `width · width_factors[level]`, the supernet mode and the start/end parts.

    `levels` says what the levels differ in: `width` only (the paper) or also `resolution`
    (level k at 1/2^k, docs/decisions.md §1.2b); `start_scale` pixel-unshuffles the input by that
    factor before the cells and pixel-shuffles back before the residual (FFDNet).
    """

    nodes: int = 4
    layers: int = 3
    width: int = 10
    width_factors: list[float] = field(default_factory=lambda: [1.0, 2.0, 4.0])
    ops: list[str] = field(default_factory=lambda: list(PRIMITIVES))
    cell_sharing: bool = True
    lwas: bool = True
    residual: bool = True
    checkpoint: bool = False
    arch_init: str = "ones"
    levels: str = "width"
    start_scale: int = 1

    def validate(self) -> None:
        """Raise HinasError on an impossible space (or one far beyond any sane size)."""
        _check(self.levels in LEVEL_MODES,
               f"space.levels must be one of {LEVEL_MODES}, got {self.levels!r}")
        _check(self.start_scale in START_SCALES,
               f"space.start_scale must be one of {START_SCALES}, got {self.start_scale!r}")
        _check(1 <= self.nodes <= MAX_NODES,
               f"space.nodes must be in 1..{MAX_NODES}, got {self.nodes}")
        _check(1 <= self.layers <= MAX_LAYERS,
               f"space.layers must be in 1..{MAX_LAYERS}, got {self.layers}")
        _check(1 <= self.width <= MAX_WIDTH,
               f"space.width must be in 1..{MAX_WIDTH}, got {self.width}")
        _check(len(self.width_factors) == 3
               and all(math.isfinite(f) and 0 < f <= MAX_FACTOR for f in self.width_factors),
               f"space.width_factors must be 3 numbers in (0, {MAX_FACTOR}], got "
               f"{self.width_factors}")
        _check(self.width * max(self.width_factors) <= MAX_WIDTH,
               f"space.width × the largest width factor must be ≤ {MAX_WIDTH}, got "
               f"{self.width} × {max(self.width_factors):g}")
        _check(bool(self.ops) and all(isinstance(op, str) for op in self.ops),
               f"space.ops must be a non-empty list of operation names, got {self.ops!r}")
        _check(self.arch_init in ("ones", "randn"),
               f"space.arch_init must be 'ones' or 'randn', got {self.arch_init!r}")

    def resolution(self, level: int) -> int:
        """The resolution level of outer level `level`: itself with resolution levels (it runs
        at 1/2^level of the start part's grid), 0 with width levels."""
        return level if self.levels == "resolution" else 0

    def size_multiple(self, levels: list[int] | tuple[int, ...]) -> int:
        """The multiple of the input size a network reaching `levels` works on (inputs are padded
        to it and the output cropped back)."""
        return self.start_scale * 2 ** max(self.resolution(level) for level in levels)

    def level_width(self, level: int, multiplier: float = 1.0) -> int:
        """Node width of a cell at `level` (times a width multiplier), at least 1."""
        return max(1, round(self.width * self.width_factors[level] * multiplier))


class JobConfig:
    """The optimisation settings a search and a training run share, validated alike: each job
    declares these fields itself, with its own defaults, so that the keys stay flat
    (`search.batch_size`, `train.batch_size`) and config.yaml keeps its order. `section` is the
    job's config key."""

    section: ClassVar[str]
    batch_size: int
    crop: int
    grad_clip: float
    loss: str
    ssim_weight: float
    val_fraction: float
    val_crop: int
    max_images: int
    channels_last: bool
    amp: str

    def check_optimisation(self, rate: str, floor: str, momentum: str,
                           decays: tuple[str, ...]) -> None:
        """HinasError unless the shared settings are sane, and the job's weight learning rate,
        its schedule's floor, its SGD momentum and its weight decays (the names of its fields
        `rate`, `floor`, `momentum`, `decays`) too."""
        s = self.section
        _check_amp(s, self.amp)
        _check(1 <= self.batch_size <= MAX_BATCH,
               f"{s}.batch_size must be in 1..{MAX_BATCH}, got {self.batch_size}")
        _check(self.crop >= 8, f"{s}.crop must be ≥ 8, got {self.crop}")
        _check(0 < self.val_fraction < 1, f"{s}.val_fraction must be in (0, 1)")
        _check_rates(f"{s}.{rate}", getattr(self, rate), f"{s}.{floor}", getattr(self, floor))
        _check(self.loss in LOSSES,
               f"{s}.loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        _check(math.isfinite(self.ssim_weight) and self.ssim_weight >= 0,
               f"{s}.ssim_weight must be a finite number ≥ 0, got {self.ssim_weight}")
        _check(math.isfinite(self.grad_clip) and self.grad_clip >= 0,
               f"{s}.grad_clip must be a finite number ≥ 0 (0: no clipping), got "
               f"{self.grad_clip}")
        for key in decays:
            value = getattr(self, key)
            _check(math.isfinite(value) and value >= 0,
                   f"{s}.{key} must be a finite number ≥ 0, got {value}")
        value = getattr(self, momentum)
        _check(math.isfinite(value) and 0 <= value < 1,
               f"{s}.{momentum} must be in [0, 1), got {value}")


@dataclass
class SearchConfig(JobConfig):
    """Bilevel search (paper §3.3, §4.1). One epoch draws `crops_per_image` random crops from every
    Train-W image; epochs are 1-based as in the paper. An A-step takes `a_batch_size` crops of
    Train A (0: `batch_size`, the paper's; larger: a lower-variance α/β gradient). `select` and
    `width` choose the genotype from the trained supernet, scoring central `select_crop` px crops of
    V (0: `val_crop`); one-shot scores first re-estimate the BatchNorm statistics on
    `bn_calibration` Train-W batches (docs/selection.md)."""

    section: ClassVar[str] = "search"
    strategy: str = "hinas"
    epochs: int = 100
    warmup_epochs: int = 20
    eval_from_epoch: int = 61
    batch_size: int = 8
    a_batch_size: int = 0
    crop: int = 64
    crops_per_image: int = 1
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    a_lr: float = 1e-3
    a_weight_decay: float = 0.0
    grad_clip: float = 5.0
    loss: str = "mse+ssim"
    ssim_weight: float = 0.6
    val_fraction: float = 0.02
    val_crop: int = 0
    max_images: int = 0
    samples: int = 100
    path_prior: str = "correct"
    select: str = "alpha"
    width: str = "viterbi"
    bn_calibration: int = 8
    select_crop: int = 32
    channels_last: bool = True
    amp: str = "off"
    max_macs: float = 0.0
    """A cost budget (0: none): G MACs of the derived network (at `train.width_multiplier`) on
    the task's cost-size input (a 481×321 photograph for denoising)."""
    max_latency: float = 0.0
    """A cost budget (0: none): ms of the folded derived network on that input, one thread."""
    cost_weight: float = 1.0
    """Weight of the A-step's penalty on the expected cost above the budget."""
    budget_fill: float = 0.9
    """Share of the budget the derived network uses at least, where the space allows: below it,
    operations are swapped for costlier ones (0: the network may use any part of it)."""

    def validate(self) -> None:
        """Raise HinasError on impossible search settings."""
        _check(self.strategy in STRATEGIES,
               f"search.strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        _check(self.epochs >= 1, f"search.epochs must be ≥ 1, got {self.epochs}")
        _check(0 <= self.warmup_epochs <= self.epochs,
               f"search.warmup_epochs must be in 0..epochs, got {self.warmup_epochs}")
        _check(1 <= self.eval_from_epoch, "search.eval_from_epoch must be ≥ 1")
        self.check_optimisation("w_lr", "w_lr_min", "w_momentum",
                                ("w_weight_decay", "a_weight_decay"))
        _check(0 <= self.a_batch_size <= MAX_BATCH,
               f"search.a_batch_size must be in 0..{MAX_BATCH} (0: batch_size), got "
               f"{self.a_batch_size}")
        _check(self.crops_per_image >= 1, "search.crops_per_image must be ≥ 1")
        _check(self.samples >= 1, "search.samples must be ≥ 1")
        _check(self.path_prior in ("correct", "keep"),
               f"search.path_prior must be 'correct' or 'keep', got {self.path_prior!r}")
        _check(self.select in SELECTIONS,
               f"search.select must be one of {', '.join(SELECTIONS)}, got {self.select!r}")
        _check(self.width in WIDTH_SELECTIONS,
               f"search.width must be one of {', '.join(WIDTH_SELECTIONS)}, got {self.width!r}")
        _check(self.bn_calibration >= 0,
               f"search.bn_calibration must be ≥ 0 batches, got {self.bn_calibration}")
        _check_rates("search.a_lr", self.a_lr)
        _check(self.select_crop == 0 or self.select_crop >= 16,
               f"search.select_crop must be 0 (val_crop) or ≥ 16 px, got {self.select_crop}")
        for key in ("max_macs", "max_latency", "cost_weight"):
            value = getattr(self, key)
            _check(math.isfinite(value) and value >= 0,
                   f"search.{key} must be a finite number ≥ 0, got {value}")
        _check(math.isfinite(self.budget_fill) and 0 <= self.budget_fill <= 1,
               f"search.budget_fill must be in [0, 1], got {self.budget_fill}")
        _check(not (self.max_macs and self.max_latency),
               "give one budget: search.max_macs or search.max_latency, not both")

    @property
    def a_batch(self) -> int:
        """Crops per A-step."""
        return self.a_batch_size or self.batch_size


@dataclass
class TrainConfig(JobConfig):
    """Training of a derived (or baseline) network (paper §4.1 training settings).

    `optimizer`: `sgd` (the paper's, with `momentum`) or `adamw` (decoupled weight decay);
    `warmup_iters` ramps the rate linearly up to `lr` before the schedule starts. `schedule`:
    `cosine` and `step` span `iters`; `constant` holds `lr` with no planned end until the decay,
    a half cosine to `lr_min` over `decay_iters` (0: a fifth of the iterations before it) from
    iteration `decay_from` (0: when the campaign's stop rule finds the held-back PSNR flat;
    see :mod:`hinas.runtime.campaign`), after which the run is done. `ema` > 0 keeps an
    exponential moving average of the weights (decay `ema` per iteration, buffers included):
    validation, the held-back scores and the saved model are then the average's (0: off).
    """

    section: ClassVar[str] = "train"
    iters: int = 400_000
    batch_size: int = 24
    crop: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    lr_min: float = 1e-5
    schedule: str = "cosine"
    decay_from: int = 0
    decay_iters: int = 0
    warmup_iters: int = 0
    ema: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    grad_clip: float = 0.4
    loss: str = "mse+ssim"
    ssim_weight: float = 0.6
    width_multiplier: float = 2.0
    val_every: int = 5000
    val_fraction: float = 0.02
    val_crop: int = 0
    max_images: int = 0
    log_every: int = 50
    channels_last: bool = False
    amp: str = "off"

    def validate(self) -> None:
        """Raise HinasError on impossible training settings."""
        _check(self.iters >= 1, f"train.iters must be ≥ 1, got {self.iters}")
        self.check_optimisation("lr", "lr_min", "momentum", ("weight_decay",))
        _check(self.schedule in SCHEDULES,
               f"train.schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        _check(self.decay_from >= 0 and self.decay_iters >= 0,
               f"train.decay_from and train.decay_iters must be ≥ 0, got {self.decay_from}, "
               f"{self.decay_iters}")
        _check(math.isfinite(self.ema) and 0 <= self.ema < 1,
               f"train.ema must be in [0, 1) (0: off), got {self.ema}")
        _check(self.optimizer in OPTIMIZERS,
               f"train.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _check(0 <= self.warmup_iters and (self.warmup_iters < self.iters
                                           or self.schedule == "constant"),  # iters: a piece's
               f"train.warmup_iters must be in 0..iters-1, got {self.warmup_iters}")
        _check(math.isfinite(self.width_multiplier) and self.width_multiplier > 0,
               f"train.width_multiplier must be a finite number > 0, got "
               f"{self.width_multiplier}")
        _check(self.val_every >= 1, "train.val_every must be ≥ 1")


@dataclass
class DataConfig:
    """Where images come from (`path`: the training folders of ground truths; `lq`: the folders of
    their degraded inputs, matched by file-name stem, for the tasks of `LQ_TASKS`; a run records
    those it used, so that `--resume` needs neither `--data` nor `--lq`) and how they are
    loaded."""

    path: list[str] = field(default_factory=list)
    lq: list[str] = field(default_factory=list)
    workers: int = 0

    def __post_init__(self) -> None:
        self.path = [p for p in self.path if p]  # run folders of older versions hold `path: ''`

    def validate(self) -> None:
        """Raise HinasError on impossible data settings."""
        _check(self.workers >= 0, "data.workers must be ≥ 0")


@dataclass
class RuntimeConfig:
    """What a run writes beside metrics.jsonl: TensorBoard scalars. (Mixed precision and memory
    format are per job: `search.amp` / `train.amp`, `search.channels_last` /
    `train.channels_last`; see :mod:`hinas.runtime.execution`.)"""

    tensorboard: bool = False


@dataclass
class DistributedConfig:
    """How a run is spread over processes (see :mod:`hinas.runtime.distributed`): `world_size` is
    recorded at launch from torchrun's environment; `backend` "" picks gloo on the CPU, nccl on
    CUDA."""

    world_size: int = 1
    backend: str = ""

    def validate(self) -> None:
        """Raise HinasError on impossible distributed settings."""
        _check(self.world_size >= 1, "distributed.world_size must be ≥ 1")
        _check(self.backend in ("", "gloo", "nccl"),
               f"distributed.backend must be '', 'gloo' or 'nccl', got {self.backend!r}")


@dataclass
class Config:
    """Everything a run needs; written as `config.yaml` into every run folder."""

    task: TaskConfig = field(default_factory=TaskConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    seed: int = 0
    device: str = "cpu"
    preset: str = ""

    def validate(self) -> Config:
        """Validate every section; return self."""
        for section in (self.task, self.space, self.search, self.train, self.data,
                        self.distributed):
            section.validate()
        _check(self.device == "cpu" or self.device.startswith("cuda"),
               f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON serialisable)."""
        return asdict(self)


def with_data(cfg: Config, data: str | Path | list | None) -> Config:
    """`cfg` recording the training folders `data` (given, or else those `cfg` holds), so that the
    run folder's config.yaml names them; HinasError when there are none."""
    given = [data] if isinstance(data, (str, Path)) else list(data or [])
    folders = [str(d) for d in (given or cfg.data.path)]
    if not folders:
        raise HinasError("no training images: give --data DIR")
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=folders))


def with_inputs(cfg: Config, lq: str | Path | list | None) -> Config:
    """`cfg` with `data.lq` set to the degraded-input folders `lq` (one or several; None: as it
    is), checked against the task (:func:`check_lq`; jobs call this before touching their run
    folder)."""
    if lq is not None and lq != []:
        folders = [str(d) for d in ([lq] if isinstance(lq, (str, Path)) else lq)]
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, lq=folders))
    check_lq(cfg.task.name, cfg.data.lq)
    return cfg


def _check_rates(key: str, rate: float, floor_key: str = "", floor: float = 0.0) -> None:
    """HinasError unless learning rate `rate` (config key `key`) is finite and > 0, and its
    schedule's floor `floor` (key `floor_key`, if any) finite in [0, rate]."""
    _check(math.isfinite(rate) and rate > 0,
           f"{key} must be a finite learning rate > 0, got {rate}")
    if floor_key:
        _check(math.isfinite(floor) and 0 <= floor <= rate,
               f"{floor_key} must be a finite learning rate in [0, {key}], got {floor}")


def _check_amp(section: str, amp: str) -> None:
    """HinasError unless `amp` is a mixed-precision mode of `AMP_MODES`."""
    _check(amp in AMP_MODES, f"{section}.amp must be one of {', '.join(AMP_MODES)}, got {amp!r}")


def _coerce(value: Any, kind: Any, key: str) -> Any:
    """Convert `value` to the annotated type `kind`, or raise HinasError naming `key`."""
    origin = typing.get_origin(kind)
    if origin is list:
        (item,) = typing.get_args(kind)
        if not isinstance(value, (list, tuple)):
            value = [value]
        return [_coerce(v, item, key) for v in value]
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(kind):
            try:
                return _coerce(value, option, key)
            except HinasError as err:
                errors.append(str(err))
        raise HinasError(errors[0])
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise HinasError(f"{key} must be true or false, got {value!r}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise HinasError(f"{key} must be an integer, got {value!r}")
    if kind is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e6" as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise HinasError(f"{key} must be a number, got {value!r}")
    if kind is str:
        if isinstance(value, str):
            return value
        hint = (" (YAML reads off, on, yes and no as booleans: quote the word, e.g. 'off')"
                if isinstance(value, bool) else "")
        raise HinasError(f"{key} must be a string, got {value!r}{hint}")
    if dataclasses.is_dataclass(kind):
        return build_dataclass(kind, value, key)
    raise TypeError(f"unsupported config type {kind} for {key}")


def build_dataclass(cls: type, values: Any, prefix: str = "") -> Any:
    """Instantiate dataclass `cls` from a (partial) dict, rejecting unknown keys."""
    if not isinstance(values, dict):
        raise HinasError(f"{prefix or 'config'} must be a mapping, got {values!r}")
    if issubclass(cls, TaskConfig):  # the class of its task, without other tasks' levels
        cls = tasks.task_class(values.get("name", cls.name))
        values = tasks.drop_foreign(cls, values)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        where = f" in {prefix}" if prefix else ""
        raise HinasError(f"unknown config key(s){where}: {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(names))}")
    kwargs = {name: _coerce(v, hints[name], f"{prefix}.{name}" if prefix else name)
              for name, v in values.items()}
    return cls(**kwargs)


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict as `{"section.key": value}` (the keys `--set` takes)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _merge(base: dict, update: dict) -> dict:
    """Recursive dict merge: `update` wins."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict[str, Any]:
    """Turn `a.b=value` (value parsed as YAML) into the nested dict `{"a": {"b": value}}`."""
    if "=" not in text:
        raise HinasError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise HinasError(f"override {text!r}: the value is not valid YAML "
                         f"({str(err).splitlines()[0]})") from None
    except ValueError:  # an integer of more digits than Python converts
        raise HinasError(f"override {key.strip()}=...: the value is {too_long_number()}") from None
    nested: dict[str, Any] = {}
    node = nested
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return nested


def preset_dict(name: str, task: str) -> dict[str, Any]:
    """The settings of preset `name` for `task` (its `common` section plus the section the task
    takes, its `preset_section`)."""
    if name not in PRESETS:
        raise HinasError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    text = resources.files("hinas").joinpath("presets", f"{name}.yaml").read_text()
    raw = yaml.safe_load(text) or {}
    return _merge(raw.get("common", {}), raw.get(tasks.task_class(task).preset_section, {}))


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file as a dict, with a clear error for a missing or broken file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise HinasError(f"{path}: cannot read config ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise HinasError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    except ValueError:  # an integer of more digits than Python converts
        raise HinasError(f"{path}: not a config ({too_long_number()})") from None
    if not isinstance(data, dict):
        raise HinasError(f"{path}: a config file must hold a mapping")
    return upgrade_legacy(data)


def upgrade_legacy(values: dict[str, Any]) -> dict[str, Any]:
    """Config values of an older version in today's keys: `runtime.amp`, one precision for every
    job, is now `search.amp` and `train.amp`."""
    runtime = values.get("runtime")
    if not isinstance(runtime, dict) or "amp" not in runtime:
        return values
    amp = runtime["amp"]
    return {**values, "runtime": {k: v for k, v in runtime.items() if k != "amp"},
            **{job: {"amp": amp, **(values.get(job) or {})} for job in ("search", "train")}}


def from_dict(values: dict[str, Any]) -> Config:
    """A validated Config from a (partial) nested dict."""
    return build_dataclass(Config, values).validate()


def resolve(task_name: str, preset: str | None = None, config_file: str | Path | None = None,
            overrides: tuple[str, ...] | list[str] = (), **fields: Any) -> Config:
    """Resolve a Config: defaults ← preset ← YAML file ← `fields` (e.g. task.sigma) ← overrides.

    `fields` are nested dicts keyed by section, e.g. `task={"sigma": [25.0]}, seed=3`.
    """
    values: dict[str, Any] = {"task": {"name": task_name}}
    if preset:
        values = _merge(values, preset_dict(preset, task_name))
        values["preset"] = preset
    if config_file:
        values = _merge(values, load_yaml(config_file))
    values = _merge(values, {k: v for k, v in fields.items() if v is not None and v != {}})
    for text in overrides:
        values = _merge(values, parse_override(text))
    return from_dict(values)


def load_config(path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> Config:
    """The config saved in a run folder (`config.yaml`), with `key.sub=value` overrides."""
    values = load_yaml(path)
    for text in overrides:
        values = _merge(values, parse_override(text))
    return from_dict(values)


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
