"""The restoration tasks (docs/degradations.md): one registered class per task that says
everything about itself, so that nothing else in hinas branches on a task's name.

A task class is the :class:`TaskConfig` of that task: a dataclass whose fields are the task's
name, the channels of its images and its own levels (σ of denoising, the SR scale, the JPEG
quality, ...). Each level is declared with :func:`level`, which also gives its command-line
option, its check and how it is written. The class attributes and methods say the rest: the
default channels, the level a model is evaluated at, its descriptions, its metric convention
(:meth:`hinas.measures.metrics.Convention.for_task` reads it), its classical baseline, the preset
section it takes, whether its inputs may be files, and the tests a packaged model of it is
measured on. `TaskConfig(name=..., **levels)` builds the class registered under `name`, so a
model or genotype file holds only its task's fields (the fields of the other tasks, which files
of older versions carry, are dropped).

How the degraded inputs of a task are made is its degradation, registered under the same name in
:mod:`hinas.data.degradations`; this module needs neither torch nor numpy (the configs import it).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hinas.errors import HinasError, check
from hinas.registry import Registry

DEFAULT_TASK = "denoise"
SIGMA_SAMPLING = ("choice", "uniform")
"""`task.sigma_sampling`: one of the σ values per crop, or σ uniform in a range (blind)."""
JPEG_QUALITY = (1, 100)
"""The JPEG quality factors Pillow's encoder takes (`task.quality`)."""
STANDARD_SIGMAS = (15.0, 25.0, 50.0)
STANDARD_QUALITIES = (10, 20, 30, 40)
"""The levels the literature reports denoising (Set12, BSD68) and JPEG artefact removal (LIVE1)
at: a training campaign scores a blind model at those within its range."""


@dataclass(frozen=True)
class Level:
    """What a level field of a task says about itself (its `metadata["level"]`, see
    :func:`level`)."""

    help: str
    """What it is, in the help of its command-line option, e.g. `JPEG quality 1-100`."""
    rule: str
    """The values it takes, in words, for errors: `an integer from 1 to 100`."""
    accepts: Callable[[Any], bool]
    """Whether one value is allowed."""
    metavar: str = "V"
    tag: str = ""
    """How `describe()` writes it: `q=` gives `jpeg q=10:40`."""
    label: str = ""
    """How a measured result names it: `q=` gives `Set12 q=10`."""
    ranged: bool = True
    """A list level holds one value or a range `[low, high]` (drawn per crop); False: any
    non-empty list of values."""
    choices: tuple = ()
    """The values a command-line option offers (empty: any)."""
    option: bool = True
    """Given on the command line as `--name` (underscores as hyphens)."""
    keyword: str = ""
    """Its keyword in the degradation's constructor (empty: its name)."""
    structural: bool = False
    """The network is built for its value (the SR scale): a model of another value cannot do
    the task."""
    example: str = ""
    """A range as the command line writes it, for its errors: `10:40`."""


def level(default: Any, help: str, rule: str, accepts: Callable[[Any], bool], **meta: Any
          ) -> Any:
    """A level field of a task class: its `default` (a list for levels given as one value or a
    range) and what :class:`Level` says about it."""
    metadata = {"level": Level(help, rule, accepts, **meta)}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def level_text(values: Any, sep: str = ":") -> str:
    """A level as the command line writes it: `10`, the range `10:40` (or `10–40` with
    `sep="–"`), a word as it is."""
    values = values if isinstance(values, list) else [values]
    return sep.join(f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in values)


class _ByName(type):
    """The metaclass of :class:`TaskConfig`: `TaskConfig(name=..., **fields)` builds the class
    registered under `name` (no name: the class's own, `DEFAULT_TASK` for TaskConfig itself),
    dropping the fields of other registered tasks (`dataclasses.replace(task, name=other)`
    keeps what both have)."""

    def __call__(cls, name: str | None = None, **values: Any) -> TaskConfig:
        unit = task_class(cls.name if name is None else name)
        own = {f.name for f in dataclasses.fields(unit)}
        kept = drop_foreign(unit, values)
        unknown = sorted(set(kept) - own)
        if unknown:
            raise TypeError(f"TaskConfig() got unexpected field(s) {', '.join(unknown)}")
        return super(_ByName, unit).__call__(name=unit.name, **kept)


@dataclass
class TaskConfig(metaclass=_ByName):
    """What is restored: the registered task `name` (a subclass per task, see the module
    docstring), the `channels` of its images (1 gray, 3 RGB; default the task's) and the task's
    own levels.

    A list level holds one value, or a range `[low, high]` from which every training crop draws
    uniformly (a blind model); evaluation is at one level (:meth:`at_evaluation`).
    """

    name: str = DEFAULT_TASK
    channels: int = 1

    title: ClassVar[str] = ""
    """The task in words (a format of its level texts): `denoising σ {sigma}`."""
    asks: ClassVar[str] = ""
    """What `hinas eval` of a classical method asks for when a level is not given: `the JPEG
    quality to evaluate at: --quality Q (1-100)`."""
    asks_blind: ClassVar[bool] = False
    """A blind model has no evaluation level of its own: `hinas eval` asks for one (a range's
    middle otherwise)."""
    preset_section: ClassVar[str] = DEFAULT_TASK
    """The section of the preset files taken on top of `common` (same-size tasks take the
    denoising settings)."""
    takes_files: ClassVar[bool] = False
    """Its degraded inputs may be the user's files (`--lq`, `data.lq`)."""
    from_files: ClassVar[bool] = False
    """Its degraded inputs are always files (nothing is simulated)."""
    files_hint: ClassVar[str] = ""
    """How to ask for this task with input files, in the error of `--lq` given to another."""
    test_y_channel: ClassVar[bool] = False
    """Scored on the BT.601 Y channel of colour images (else on every channel)."""
    input_text: ClassVar[str] = ""
    """The test input, in words, for the metric convention."""
    baseline: ClassVar[tuple[str, str] | None] = None
    """The classical method scored beside a packaged model, and its name in the card."""
    packaging_tests: ClassVar[tuple[tuple[str, dict], ...]] = ()
    """`(test set, levels)` a packaged model is measured on (benchmarks/pretrained.py)."""
    rgb_packaging_tests: ClassVar[tuple[tuple[str, dict], ...] | None] = None
    """Those of an RGB model, where they differ (None: `packaging_tests`)."""
    cost_size: ClassVar[tuple[int, int]] = (481, 321)
    """(width, height) of the input a packaged model's MACs and latency are measured at (a
    BSDS500 photograph)."""

    # --- levels --------------------------------------------------------------------------

    @classmethod
    def levels(cls) -> list[tuple[str, Level]]:
        """The task's level fields, in order, with what they say about themselves."""
        return [(f.name, f.metadata["level"]) for f in dataclasses.fields(cls)
                if "level" in f.metadata]

    @classmethod
    def options(cls) -> list[tuple[str, Level]]:
        """The levels given on the command line."""
        return [(n, lvl) for n, lvl in cls.levels() if lvl.option]

    @classmethod
    def level_options(cls) -> str:
        """The command-line options of the levels, as usage writes them: `--sigma S`."""
        return " ".join(f"--{n.replace('_', '-')} {lvl.metavar}" for n, lvl in cls.options())

    @classmethod
    def kind(cls, name: str) -> tuple[type, bool]:
        """The type of one value of level `name` (int, float or str), and whether the level is
        a list."""
        hint = typing.get_type_hints(cls)[name]
        listed = typing.get_origin(hint) is list
        return (typing.get_args(hint)[0] if listed else hint), listed

    @classmethod
    def parse_option(cls, name: str, raw: Any) -> dict[str, Any]:
        """The fields of level `name` given on the command line as `raw`: one value, or a range
        `LOW:HIGH` of a list level (checked further by :meth:`validate`)."""
        kind, listed = cls.kind(name)
        if not listed or not isinstance(raw, str):
            return {name: raw}
        try:
            values = [kind(v) for v in raw.split(":")]
            if len(values) > 2:
                raise ValueError
        except ValueError:
            one = "integer" if kind is int else "number"
            example = dict(cls.options())[name].example
            raise HinasError(f"--{name.replace('_', '-')} {raw}: give one {one} or a range "
                             f"LOW:HIGH (e.g. {example})") from None
        return {name: values}

    def validate(self) -> None:
        """Raise HinasError on an impossible task."""
        check(self.channels in (1, 3), f"task.channels must be 1 or 3, got {self.channels}")
        for name, lvl in self.levels():
            value = getattr(self, name)
            values = value if isinstance(value, list) else [value]
            shape = bool(values) and (not isinstance(value, list) or not lvl.ranged
                                      or len(values) == 1
                                      or (len(values) == 2 and values[0] < values[1]))
            rule = (f"{lvl.rule}, or a range [low, high] of them with low < high"
                    if isinstance(value, list) and lvl.ranged else lvl.rule)
            check(shape and all(lvl.accepts(v) for v in values),
                  f"task.{name} must be {rule}, got {value!r}")
        self.check_levels()

    def check_levels(self) -> None:
        """The task's own checks across its levels (HinasError)."""

    # --- evaluation ----------------------------------------------------------------------

    @property
    def blind(self) -> bool:
        """Whether a level is a range drawn per crop (a blind model)."""
        return any(isinstance(getattr(self, n), list) and lvl.ranged
                   and len(getattr(self, n)) == 2 for n, lvl in self.levels())

    def evaluation_levels(self) -> dict[str, Any]:
        """The levels of the evaluation inputs: each one value, or the middle of its range
        (integers rounded half up)."""
        out = {}
        for name, lvl in self.levels():
            values = getattr(self, name)
            if isinstance(values, list) and lvl.ranged:
                middle = sum(values) / len(values)
                out[name] = [math.floor(middle + 0.5) if self.kind(name)[0] is int else middle]
        return out

    def at_evaluation(self) -> TaskConfig:
        """This task with every level fixed at its evaluation value (the test inputs are made at
        one level, whatever range a model was trained on)."""
        return dataclasses.replace(self, **self.evaluation_levels())

    def held_back_levels(self) -> list[TaskConfig]:
        """The levels a training campaign scores its held-back images at, each this task fixed
        at one level: the evaluation level alone, unless the task says otherwise (denoising:
        every listed σ, or the standard σ within a blind range; JPEG: the standard qualities
        within a range)."""
        return [self.at_evaluation()]

    def at_levels(self, record: dict[str, Any]) -> TaskConfig:
        """This task at the levels a result `record` names (one value each), e.g.
        `{"sigma": 25.0}`; other keys are ignored."""
        own = dict(self.levels())
        return dataclasses.replace(self, **{
            k: [v] if isinstance(getattr(self, k), list) else v
            for k, v in record.items() if k in own})

    def result_fields(self) -> dict[str, Any]:
        """The command-line levels of this task at evaluation, one value each, as a measured
        result records them: `{"sigma": 25.0}`, `{"scale": 4}`."""
        task = self.at_evaluation()
        return {n: (getattr(task, n)[0] if isinstance(getattr(task, n), list)
                    else getattr(task, n)) for n, _ in self.options()}

    def network_levels(self) -> dict[str, Any]:
        """The levels the network is built for (a model of other values cannot do the task)."""
        return {n: getattr(self, n) for n, lvl in self.levels() if lvl.structural}

    def runs_networks_of(self, built_for: TaskConfig) -> bool:
        """Whether a network built for task `built_for` does this task, its levels aside (see
        :meth:`network_levels`): a network of the same task."""
        return built_for.name == self.name

    def defaults_for(self, name: str | None = None) -> dict[str, Any]:
        """The fields a task `name` (None: this one) takes from this task, e.g. the task of a
        genotype for its training: all of them but the name for the same task, else the
        channels."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields.pop("name")
        return fields if name in (None, self.name) else {"channels": self.channels}

    @property
    def out_scale(self) -> int:
        """Spatial up-scaling factor of the network (1 for a task that keeps the size)."""
        return 1

    def degradation_options(self) -> dict[str, Any]:
        """The constructor options of this task's registered degradation
        (:func:`hinas.data.degradations.task_degradation` builds it)."""
        return {lvl.keyword or n: getattr(self, n) for n, lvl in self.levels()}

    def noise_variance(self) -> tuple[float, float] | None:
        """The noise of the evaluation input as the variance `a·x + b` of x in [0, 1] (what
        BM3D is told), None for a task that does not add noise."""
        return None

    @property
    def input_channels(self) -> int:
        """The channels a network of this task takes: the image's, and as many more for a
        noise-level map (:class:`NoiseTask`)."""
        return self.channels

    @property
    def needs_level(self) -> bool:
        """A network of this task must be told the level of its input (a noise-level map)."""
        return False

    def package_tests(self) -> tuple[tuple[str, dict], ...]:
        """`(test set, levels)` a packaged model of this task and its channels is measured on."""
        if self.channels == 3 and self.rgb_packaging_tests is not None:
            return self.rgb_packaging_tests
        return self.packaging_tests

    # --- metric convention ---------------------------------------------------------------

    @property
    def crop_border(self) -> int:
        """Border pixels left out of PSNR/SSIM."""
        return 0

    def input_variant(self, noise_variant: str = "float") -> str:
        """The test input, in words (`noise_variant`: see
        :meth:`hinas.measures.metrics.Convention.for_task`)."""
        return self.input_text

    # --- descriptions --------------------------------------------------------------------

    def texts(self, sep: str = ":") -> dict[str, str]:
        """Each level as text: ranges joined by `sep`, other lists by `/`."""
        return {n: level_text(getattr(self, n), sep if lvl.ranged else "/")
                for n, lvl in self.levels()}

    def describe(self) -> str:
        """Short name, e.g. `denoise sigma=50`, `sr x4`, `jpeg q=10:40`,
        `camera a=0.01 b=0.0004` or `paired`."""
        texts = self.texts()
        return " ".join([self.name, *(f"{lvl.tag}{texts[n]}" for n, lvl in self.options())])

    def in_words(self) -> str:
        """`gray denoising σ 0–55 (blind)`, `RGB super-resolution ×4`, `gray JPEG artefact
        removal, quality 10–40 (blind)`: the task in words."""
        colour = "gray" if self.channels == 1 else "RGB"
        note = f" ({self.range_note()})" if self.range_note() else ""
        return f"{colour} {self.title.format(**self.texts('–'))}{note}"

    def range_note(self) -> str:
        """How a model of this task meets the levels of a range, in words (empty: one
        level)."""
        return "blind" if self.blind else ""


TASKS: Registry[type[TaskConfig]] = Registry("task")


def register_task(name: str) -> Callable[[type], type]:
    """Class decorator registering a :class:`TaskConfig` dataclass as task `name`."""

    def decorate(cls: type) -> type:
        cls.name = name
        return TASKS.register(name)(cls)

    return decorate


def task_class(name: Any) -> type[TaskConfig]:
    """The class of task `name`; HinasError naming the registered ones otherwise."""
    if not isinstance(name, str) or name not in TASKS:
        raise HinasError(f"task.name must be one of {', '.join(TASKS.names())}, got {name!r}")
    return TASKS.get(name)


def drop_foreign(unit: type[TaskConfig], values: dict[str, Any]) -> dict[str, Any]:
    """`values` without the fields of other tasks that task class `unit` lacks: their levels
    (files of older versions carry every task's), and their other fields where these hold
    their defaults (a `noise_map` asked of a task without one stays, to be refused)."""
    own = {f.name for f in dataclasses.fields(unit)}
    defaults = {f.name: f.default for t in TASKS.names() for f in dataclasses.fields(TASKS.get(t))
                if f.name not in own and f.default is not dataclasses.MISSING}
    levels = level_names()
    return {k: v for k, v in values.items()
            if k in own or (k not in levels and not (k in defaults and v == defaults[k]))}


def level_names() -> set[str]:
    """The level fields of every registered task."""
    return {n for t in TASKS.names() for n, _ in TASKS.get(t).levels()}


def command_line_levels() -> dict[str, tuple[Level, list[str]]]:
    """Every level with a command-line option, by field name: what it says, and the tasks that
    have it (a level two tasks share is one option)."""
    out: dict[str, tuple[Level, list[str]]] = {}
    for name in TASKS.names():
        for field_name, lvl in TASKS.get(name).options():
            out.setdefault(field_name, (lvl, []))[1].append(name)
    return out


def command_line_options(inherited: str = "", evaluating: bool = False
                         ) -> list[tuple[str, dict[str, Any]]]:
    """The command-line options of the tasks, as `(flag, argparse keywords)`: `--task`, one per
    level of every registered task (a list level as one value or a range LOW:HIGH, drawn per
    crop in training, evaluated at its middle when `evaluating`) and `--channels`. Their
    defaults, as their help says, are the task's, or those `inherited` from a model or genotype
    ("the model's"); none is an argparse default, so that a resumed run can tell which were
    given."""
    def default(value: str) -> str:
        return inherited if evaluating else f"{inherited}, else {value}" if inherited else value

    first = "; a method's first task" if evaluating else ""
    options = [("--task", {"choices": TASKS.names(), "help": "restoration task (default: "
                           f"{default(DEFAULT_TASK)}{first})"})]
    ranges = "evaluated at its middle" if evaluating else "drawn uniformly per crop (blind)"
    for name, (lvl, owners) in command_line_levels().items():
        unit = task_class(owners[0])
        value = getattr(unit(), name)
        several = "" if evaluating or lvl.ranged else ", several (one drawn per crop)"
        form = f": one value{several} or a range LOW:HIGH {ranges}" \
            if isinstance(value, list) else ""
        kind = ({"nargs": "+"} if not lvl.ranged else {}) if isinstance(value, list) else \
            {"type": unit.kind(name)[0], "choices": lvl.choices or None}
        options.append((f"--{name.replace('_', '-')}", {
            "metavar": lvl.metavar, **kind, "help": f"{lvl.help}{form} ({'/'.join(owners)}; "
                                                    f"default: {default(level_text(value))})"}))
    return [*options, ("--channels", {"type": int, "choices": (1, 3), "help": "1 = gray, 3 = "
                                      f"RGB (default: {default('the task' + chr(39) + 's')})"})]


def noise_map_tasks() -> list[str]:
    """The tasks whose networks may take a noise-level map (:class:`NoiseTask`)."""
    return [t for t in TASKS.names() if issubclass(TASKS.get(t), NoiseTask)]


def noise_map_option() -> tuple[str, dict[str, Any]]:
    """`--noise-map` of the training commands, as `(flag, argparse keywords)`."""
    return ("--noise-map", {"action": "store_true", "default": None, "help": (
        "give the network a noise-level map beside the image (FFDNet): it is told the noise "
        f"level at evaluation and restoration ({'/'.join(noise_map_tasks())}; default: off)")})


def noise_level_options() -> list[tuple[str, dict[str, Any]]]:
    """The options that tell a noise-map model the noise level of the images it restores, as
    `(flag, argparse keywords)`: one value of every level of the noise tasks."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for name in noise_map_tasks():
        for field_name, lvl in TASKS.get(name).options():
            out.setdefault(field_name, (f"--{field_name.replace('_', '-')}", {
                "metavar": lvl.metavar, "type": float, "help": f"{lvl.help}: the noise of the "
                f"inputs, which a noise-map model is told ({name})"}))
    return list(out.values())


def option_fields(task: str, given: dict[str, Any]) -> dict[str, Any]:
    """The task fields of the command-line levels `given` (field name → raw value, None when
    not given), each parsed by the task that has it (`task` first); those of no task are
    ignored."""
    owners = command_line_levels()
    fields: dict[str, Any] = {}
    for name, raw in given.items():
        if raw is None or name not in owners:
            continue
        holders = owners[name][1]
        fields.update(task_class(task if task in holders else holders[0]).parse_option(name,
                                                                                       raw))
    return fields


def level_label(record: dict[str, Any]) -> str:
    """The levels a measured result `record` names, as its label writes them: `σ=25`, `×4`,
    `q=10`, `a=0.01 b=0.0004`."""
    labels = {}
    for name, (lvl, _) in command_line_levels().items():
        if name in record:
            labels[name] = f"{lvl.label}{level_text(record[name])}"
    return " ".join(labels.values())


def check_lq(task: str, lq: list[str] | None) -> None:
    """HinasError unless the degraded-input folders `lq` suit `task`: a task whose inputs are
    always files needs them, only tasks that take files accept them."""
    unit = task_class(task)
    check(not unit.from_files or bool(lq),
          f"the {task} task reads its degraded inputs from files: give --lq DIR (data.lq)")
    takers = [TASKS.get(t) for t in TASKS.names() if TASKS.get(t).takes_files]
    check(not lq or unit.takes_files,
          f"--lq (data.lq) gives degraded inputs for the {' or '.join(t.name for t in takers)} "
          f"task, not {task!r} (use {', or '.join(t.files_hint for t in takers)})")


# --------------------------------------------------------------------------------------------
# The registered tasks
# --------------------------------------------------------------------------------------------


def _non_negative(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v >= 0


@dataclass
class NoiseTask(TaskConfig):
    """A task that adds noise of variance `a·x + b` (x in [0, 1]), whose network may be told
    that noise: with `noise_map` the network takes, beside the image, a noise-level map of the
    same channels, the standard deviation `sqrt(a·max(y, 0) + b)` at every pixel of the noisy
    input y (:func:`hinas.data.degradations.noise_map`; FFDNet's map, σ/255 everywhere for
    Gaussian noise). Training draws the level per crop as a blind model does and gives the
    network the map of the level drawn; restoring and evaluating give the level asked for."""

    noise_map: bool = False

    @property
    def input_channels(self) -> int:
        return 2 * self.channels if self.noise_map else self.channels

    @property
    def needs_level(self) -> bool:
        return self.noise_map

    def validate(self) -> None:
        check(isinstance(self.noise_map, bool),
              f"task.noise_map must be true or false, got {self.noise_map!r}")
        super().validate()

    def describe(self) -> str:
        return super().describe() + (" map" if self.noise_map else "")

    def range_note(self) -> str:
        return "noise-level map input" if self.noise_map else super().range_note()


@register_task("denoise")
@dataclass
class Denoise(NoiseTask):
    """Additive white Gaussian noise of standard deviation σ on the 0–255 scale.

    With `sigma_sampling: choice` every crop draws one of the `sigma` values; with `uniform`
    (blind denoising, DnCNN-B style) `sigma` is a range `[low, high]` and every crop draws σ
    uniformly from it. Evaluation is at the first σ, or the middle of a blind range; `hinas
    eval` of a blind model asks for the σ.
    """

    sigma: list[float] = level(
        [50.0], "noise level(s) on the 0-255 scale",
        "a non-empty list of finite σ ≥ 0", _non_negative, metavar="S", tag="sigma=", label="σ=",
        ranged=False, example="0:55")
    sigma_sampling: str = level("choice", "", f"one of {', '.join(SIGMA_SAMPLING)}",
                                lambda v: v in SIGMA_SAMPLING, option=False, keyword="sampling")

    title = "denoising σ {sigma}"
    asks = "the noise level to evaluate at: --sigma S (0-255 scale)"
    asks_blind = True
    baseline = ("bm3d", "BM3D")
    packaging_tests = tuple(("Set12", {"sigma": s}) for s in STANDARD_SIGMAS)
    rgb_packaging_tests = tuple(("Set5", {"sigma": s}) for s in STANDARD_SIGMAS)
    """Colour denoising: Set12 is gray (its noise would be the same in every channel) and CBSD68
    is not shipped, so the RGB images of Set5."""
    NOISE_VARIANTS: ClassVar[dict[str, str]] = {
        "float": "clean + N(0, sigma^2) in float, not clipped, not quantised",
        "clipped": "clean + N(0, sigma^2), clipped to [0, 255]",
        "quantized": "clean + N(0, sigma^2), clipped and rounded to uint8",
    }
    """The noisy test inputs papers use (:func:`hinas.data.degradations.noisy_for_image`)."""

    @classmethod
    def parse_option(cls, name: str, raw: Any) -> dict[str, Any]:
        """`--sigma` values: several numbers sample one of them per crop; one range `LOW:HIGH`
        samples uniformly (blind)."""
        if name != "sigma":
            return super().parse_option(name, raw)
        values = raw if isinstance(raw, list) else [raw]
        try:
            if any(":" in str(v) for v in values):
                if len(values) != 1:
                    raise ValueError
                low, high = (float(v) for v in str(values[0]).split(":"))
                return {"sigma": [low, high], "sigma_sampling": "uniform"}
            return {"sigma": [float(v) for v in values], "sigma_sampling": "choice"}
        except ValueError:
            raise HinasError(f"--sigma {' '.join(map(str, values))}: give numbers (e.g. 25 or "
                             f"15 25 50) or one range LOW:HIGH (e.g. 0:55)") from None

    def check_levels(self) -> None:
        check(not self.blind or (len(self.sigma) == 2 and self.sigma[0] < self.sigma[1]),
              f"task.sigma must be a range [low, high] with low < high for uniform sampling, "
              f"got {self.sigma}")

    @property
    def blind(self) -> bool:
        """True for blind denoising: σ drawn from a continuous range."""
        return self.sigma_sampling == "uniform"

    @property
    def eval_sigma(self) -> float:
        """The σ at which a model trained for this task is validated: the first σ, or the
        middle of a blind range."""
        return (self.sigma[0] + self.sigma[1]) / 2 if self.blind else self.sigma[0]

    def evaluation_levels(self) -> dict[str, Any]:
        return {"sigma": [self.eval_sigma], "sigma_sampling": "choice"}

    def held_back_levels(self) -> list[TaskConfig]:
        """Every listed σ; for a blind range the `STANDARD_SIGMAS` within it (the evaluation σ
        if none is)."""
        base = self.at_evaluation()
        sigmas = ([s for s in STANDARD_SIGMAS if self.sigma[0] <= s <= self.sigma[1]]
                  if self.blind else self.sigma)
        return [dataclasses.replace(base, sigma=[s]) for s in sigmas or [self.eval_sigma]]

    def texts(self, sep: str = ":") -> dict[str, str]:
        return {**super().texts(sep), **({"sigma": level_text(self.sigma, sep)}
                                         if self.blind else {})}

    def noise_variance(self) -> tuple[float, float]:
        return 0.0, (self.eval_sigma / 255.0) ** 2

    def input_variant(self, noise_variant: str = "float") -> str:
        if noise_variant not in self.NOISE_VARIANTS:
            raise ValueError(f"unknown noise variant '{noise_variant}'")
        return f"{self.NOISE_VARIANTS[noise_variant]}; noise seeded per image"


@register_task("sr")
@dataclass
class SuperResolution(TaskConfig):
    """Super-resolution of a MATLAB-bicubic ×`scale` downsampling (or of the user's
    low-resolution files, `--lq`), on RGB images by default."""

    channels: int = 3
    scale: int = level(4, "SR factor", "2, 3 or 4", lambda v: v in (2, 3, 4), metavar="S",
                       tag="x", label="×", choices=(2, 3, 4), structural=True)

    title = "super-resolution ×{scale}"
    asks = "the SR factor to evaluate at: --scale 2|3|4"
    preset_section = "sr"
    takes_files = True
    files_hint = "--task sr --scale S for low-resolution files"
    test_y_channel = True
    baseline = ("bicubic", "bicubic")
    packaging_tests = (("Set5", {}), ("Set14", {}))
    cost_size = (128, 128)

    @property
    def out_scale(self) -> int:
        return self.scale

    @property
    def crop_border(self) -> int:
        return self.scale

    def input_variant(self, noise_variant: str = "float") -> str:
        return (f"HR modcrop {self.scale}; LR = MATLAB bicubic x1/{self.scale} of HR, rounded "
                f"to uint8")


@register_task("jpeg")
@dataclass
class Jpeg(TaskConfig):
    """JPEG artefact removal: the image encoded by Pillow at quality `quality` and decoded; one
    quality, or a range drawn per crop (blind)."""

    quality: list[int] = level(
        [10], "JPEG quality 1-100", f"an integer from {JPEG_QUALITY[0]} to {JPEG_QUALITY[1]}",
        lambda q: isinstance(q, (int, float)) and float(q).is_integer()
        and JPEG_QUALITY[0] <= q <= JPEG_QUALITY[1],
        metavar="QUALITY", tag="q=", label="q=", example="10:40")

    title = "JPEG artefact removal, quality {quality}"
    asks = "the JPEG quality to evaluate at: --quality Q (1-100)"
    test_y_channel = True
    input_text = ("8-bit image encoded as JPEG by Pillow at the evaluation quality (RGB: 4:2:0 "
                  "chroma subsampling) and decoded")
    baseline = ("jpeg", "JPEG input")
    packaging_tests = tuple(("Set12", {"quality": q}) for q in (10, 20, 30))

    @property
    def eval_quality(self) -> int:
        """The JPEG quality of the evaluation inputs: the one quality, or the middle of a range
        rounded half up."""
        return self.at_evaluation().quality[0]

    def held_back_levels(self) -> list[TaskConfig]:
        """For a quality range the `STANDARD_QUALITIES` within it (the evaluation quality if
        none is); else the one quality."""
        if len(self.quality) != 2:
            return super().held_back_levels()
        low, high = self.quality
        qualities = [q for q in STANDARD_QUALITIES if low <= q <= high] or [self.eval_quality]
        base = self.at_evaluation()
        return [dataclasses.replace(base, quality=[q]) for q in qualities]


@register_task("camera")
@dataclass
class Camera(NoiseTask):
    """Camera (Poisson–Gaussian) noise of variance `noise_a`·x + `noise_b`, x in [0, 1]; each
    one value or a range drawn per crop (blind)."""

    noise_a: list[float] = level(
        [0.01], "camera noise variance a of a x + b, x in [0, 1], a ≥ 0", "a number ≥ 0",
        _non_negative, metavar="NOISE_A", tag="a=", label="a=", keyword="a",
        example="0:0.02")
    noise_b: list[float] = level(
        [0.0004], "camera noise variance b of a x + b, b ≥ 0", "a number ≥ 0", _non_negative,
        metavar="NOISE_B", tag="b=", label="b=", keyword="b", example="0:0.001")

    title = "camera noise removal, a {noise_a}, b {noise_b}"
    asks = ("the camera noise to evaluate at: --noise-a A --noise-b B (variance a x + b, x in "
            "[0, 1])")
    input_text = ("255 (a Poisson(x/a) + N(0, b)), x = clean/255, in float, not clipped, not "
                  "quantised; noise seeded per image")
    baseline = ("bm3d", "BM3D")
    packaging_tests = tuple(("Set12", {"noise_a": a, "noise_b": b})
                            for a, b in ((0.002, 0.0001), (0.01, 0.0004), (0.02, 0.001)))

    def check_levels(self) -> None:
        check(self.noise_a[-1] > 0 or self.noise_b[-1] > 0,
              "task.noise_a and task.noise_b are both 0: there is no noise to remove")

    @property
    def eval_noise(self) -> tuple[float, float]:
        """The camera noise `(a, b)` of the evaluation inputs: the values, or the middles of
        their ranges."""
        task = self.at_evaluation()
        return task.noise_a[0], task.noise_b[0]

    def noise_variance(self) -> tuple[float, float]:
        return self.eval_noise


@register_task("paired")
@dataclass
class Paired(TaskConfig):
    """Whatever turned the ground truths into the user's degraded files of the same size
    (`--lq`, `data.lq`): nothing is simulated."""

    title = "restoration of paired files"
    takes_files = True
    from_files = True
    files_hint = "--task paired"

    def runs_networks_of(self, built_for: TaskConfig) -> bool:
        """Any network that keeps the image size: the user's degraded files are its inputs."""
        return built_for.out_scale == 1
    test_y_channel = True
    baseline = ("identity", "the input file")
