"""The committed benchmark results are portable: no text in them (JSON values, PNG metadata)
holds an absolute path of the machine that made them; and every committed genotype and model
folder (benchmark results, the shipped models) still loads, whatever version wrote it."""

import json
import pickletools
import re
import shlex
import subprocess
import zipfile
from pathlib import Path

from PIL import Image

import hinas
from hinas.data.images import relative_name
from hinas.models.folder import SPEC_FILE, WEIGHTS_FILE, ModelSpec, load_model
from hinas.runtime.runs import load_checkpoint
from hinas.space.genotype import Genotype

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
WEIGHTS = Path(hinas.__file__).parent / "weights"
ABSOLUTE = re.compile(r"^(/|~|[A-Za-z]:[\\/])")


def _committed() -> list[Path]:
    out = subprocess.run(["git", "ls-files", str(RESULTS)], cwd=REPO, capture_output=True,
                         text=True, check=False)
    files = [REPO / f for f in out.stdout.split()] if out.returncode == 0 else []
    return files or [p for p in RESULTS.rglob("*") if p.is_file()]


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _pickled_strings(data: bytes) -> list[str]:
    # Only string opcodes: the raw bytes of pickled random states can look like a path.
    return [arg for op, arg, _ in pickletools.genops(data)
            if "UNICODE" in op.name and isinstance(arg, str)]


def _absolute_paths(text: str) -> list[str]:
    try:
        tokens = shlex.split(text)
    except ValueError:
        tokens = text.split()
    return [t for t in tokens if ABSOLUTE.match(t)]


def test_no_committed_result_holds_an_absolute_path():
    found = {}
    for path in _committed():
        if path.suffix == ".json":
            texts = list(_strings(json.loads(path.read_text())))
        elif path.suffix == ".png":
            with Image.open(path) as im:
                texts = [str(v) for v in im.info.values() if isinstance(v, str)]
        elif path.suffix == ".safetensors":  # binary tensors after a JSON header
            size = int.from_bytes(path.read_bytes()[:8], "little")
            texts = list(_strings(json.loads(path.read_bytes()[8:8 + size])))
        elif path.suffix == ".pt":  # a zip: the strings the pickled record holds
            with zipfile.ZipFile(path) as archive:
                texts = [text for name in archive.namelist() if name.endswith("data.pkl")
                         for text in _pickled_strings(archive.read(name))]
        else:
            texts = [path.read_text(errors="ignore")]
        bad = [p for text in texts for p in _absolute_paths(text)]
        if bad:
            found[path.relative_to(REPO).as_posix()] = bad[:3]
    assert not found


def test_images_are_named_relative_to_their_data_folder(tmp_path):
    a, b = tmp_path / "T91", tmp_path / "BSDS" / "train"
    assert relative_name(a / "x.png", a) == "x.png"
    assert relative_name(b / "sub" / "y.jpg", [a, b]) == "train/sub/y.jpg"
    assert relative_name(a / "x.png", [a, b]) == "T91/x.png"


def _committed_json(kind: str) -> list[Path]:
    """The committed JSON files of format `kind` (benchmark results and shipped models)."""
    files = [*_committed(), *(p for p in WEIGHTS.rglob("*.json"))]
    return sorted({p for p in files if p.suffix == ".json"
                   and f'"format": "{kind}"' in p.read_text()})


def test_every_committed_genotype_loads():
    genotypes = _committed_json("hinas-genotype")
    assert len(genotypes) >= 20
    for path in genotypes:
        genotype = Genotype.load(path)
        assert genotype.task.describe() and genotype.widths()


def test_every_committed_model_folder_loads_with_its_weights():
    folders = [p.parent for p in _committed_json("hinas-model") if p.name == SPEC_FILE]
    assert len(folders) >= 20 and {f.name for f in folders} >= {
        p.name for p in WEIGHTS.iterdir() if p.is_dir()}
    for folder in folders:
        spec = ModelSpec.load(folder)
        if not (folder / WEIGHTS_FILE).exists():  # a training's state before its first weights
            assert (folder / "last.pt").exists(), f"{folder}: neither weights nor a checkpoint"
            spec.build().load_state_dict(load_checkpoint(folder / "last.pt")["model"])
            continue
        model = load_model(folder)
        assert not model.training and spec.task.describe()
