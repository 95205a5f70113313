"""Benchmark scripts end to end at tiny settings: quality (both tasks), inference, search cost,
search against random architectures, and the report that turns their JSON into the tables of
docs/benchmarks.md and a plot."""

import importlib.util
import json
import shutil
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from hinas.config import TaskConfig
from hinas.space.genotype import Genotype
from tiny_runs import GRAY_PHOTOS, RGB_PHOTOS, tiny_genotype, train_tiny, write_photos

sys.path.insert(0, str(Path(__file__).parents[1]))  # the repository root: `benchmarks`
from benchmarks import (  # noqa: E402
    distributed_throughput,
    gpu_zoo,
    inference,
    pretrained,
    quality,
    report,
    search_cost,
    search_vs_random,
    selection_signals,
    training_speed,
)

METHOD_KEYS = {"kind", "arch", "psnr", "ssim", "params", "macs", "cost_input", "latency_s",
               "seconds_per_image", "search_seconds", "train_seconds", "best_val_psnr", "device",
               "load_1min"}
TINY_SEARCH = ["--set", "search.epochs=2", "--set", "search.eval_from_epoch=2",
               "--set", "search.samples=2"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    return {"gray": write_photos(root / "gray", GRAY_PHOTOS[:5], 48),
            "gray_test": write_photos(root / "gray_test", GRAY_PHOTOS[5:], 40),
            "rgb": write_photos(root / "rgb", RGB_PHOTOS[:4], 48),
            "rgb_test": write_photos(root / "rgb_test", RGB_PHOTOS[4:5], 36), "root": root}


def test_quality_denoise_searches_trains_and_scores_every_method(folders, tmp_path):
    out = tmp_path / "q.json"
    summary = quality.main([
        "--task", "denoise", "--sigma", "50", "--train", str(folders["gray"]),
        "--test", str(folders["gray_test"]), "--iters", "2", "--preset", "tiny", *TINY_SEARCH,
        "--set", "train.val_every=2", "--arch-option", "dncnn.depth=3",
        "--arch-option", "dncnn.width=4", "--arch-option", "hinas-w40.width=3",
        "--arch-option", "hinas-wm.base_width=2", "--cost-size", "24x16", "--repeats", "1",
        "--json", str(out), "--markdown", str(tmp_path / "q.md"), "--out", str(tmp_path / "w")])
    assert json.loads(out.read_text()) == json.loads(json.dumps(summary))
    methods = summary["methods"]
    assert list(methods)[:5] == ["hinas", "rsws", "hinas-w40", "hinas-wm", "dncnn"]
    assert "noisy" in methods and ("bm3d" in methods or "bm3d skipped" in str(summary["notes"]))
    for name, m in methods.items():
        assert set(m) == METHOD_KEYS and 5 < m["psnr"] < 60 and 0 < m["ssim"] <= 1, name
    for name in ("hinas", "rsws", "hinas-w40", "hinas-wm"):
        assert methods[name]["search_seconds"] > 0
    net = methods["dncnn"]
    assert net["cost_input"] == [24, 16, 1] and net["params"] > 0 and net["macs"] > 0
    assert net["latency_s"] > 0 and net["train_seconds"] > 0 and net["search_seconds"] is None
    assert net["load_1min"] >= 0 and methods["noisy"]["load_1min"] is None
    assert methods["noisy"]["params"] is None
    # one identical budget: every run folder records the same training settings
    configs = {(tmp_path / "w" / n / "config.yaml").read_text() for n in
               ("hinas", "rsws", "hinas-w40", "hinas-wm", "dncnn")}
    assert len(configs) == 1
    assert (tmp_path / "w" / "search-random" / "genotype.json").is_file()
    assert "| dncnn |" in (tmp_path / "q.md").read_text()


def test_quality_sr_with_given_genotypes_in_two_merged_runs(folders, tmp_path):
    g = tmp_path / "g.json"
    tiny_genotype(TaskConfig(name="sr", scale=2, channels=3)).save(g)
    common = ["--task", "sr", "--scale", "2", "--train", str(folders["rgb"]),
              "--test", str(folders["rgb_test"]), "--iters", "2", "--preset", "tiny",
              "--set", "train.val_every=2", "--genotype", str(g), "--rsws-genotype", str(g),
              "--arch-option", "fsrcnn.d=4", "--cost-size", "16x16", "--repeats", "1"]
    first = quality.main([*common, "--methods", "bicubic,hinas", "--json",
                          str(tmp_path / "a.json")])
    assert list(first["methods"]) == ["hinas", "bicubic"]
    summary = quality.main([*common, "--methods", "rsws,fsrcnn", "--merge",
                            str(tmp_path / "a.json")])
    assert list(summary["methods"]) == ["hinas", "rsws", "fsrcnn", "bicubic"]
    assert summary["methods"]["hinas"] == first["methods"]["hinas"]
    assert summary["command"].count("--methods") == 2
    assert summary["methods"]["hinas"]["search_seconds"] is None  # given, none recorded
    assert summary["methods"]["fsrcnn"]["cost_input"] == [16, 16, 3]
    with pytest.raises(SystemExit, match="another run"):
        quality.main([*common[:-4], "--cost-size", "8x8", "--repeats", "1", "--methods",
                      "bicubic", "--merge", str(tmp_path / "a.json")])
    with pytest.raises(SystemExit):
        quality.parse_args([*common, "--methods", "dncnn"])


def test_quality_targets_are_judged_from_the_figures():
    def net(psnr, params, latency):
        return {"kind": "network", "psnr": psnr, "params": params, "latency_s": latency}

    summary = {"config": {"task": "denoise"}, "methods": {
        "hinas": net(26.0, 100, 0.1), "rsws": net(26.0, 50, 0.05),
        "hinas-w40": net(25.0, 200, 0.3), "dncnn": net(25.5, 500, 0.2),
        "bm3d": {"kind": "classic", "psnr": 25.2}}}
    checks = quality.target_checks(summary)
    assert checks[0].startswith("- met: hinas ≥ dncnn with lower params and latency_s")
    assert "params 100 vs 500" in checks[0] and "latency_s 100.0 ms vs 200.0 ms" in checks[0]
    assert checks[1].startswith("- MISSED: hinas > rsws")
    assert checks[2].startswith("- met: hinas ≥ hinas-w40")
    by_net = [c for c in checks if "≥ 1 dB above bm3d" in c]
    assert len(by_net) == 4 and all(c.startswith("- MISSED") for c in by_net)
    del summary["methods"]["bm3d"]
    assert len(quality.target_checks(summary)) == 3


def test_inference_records_latencies_and_unavailable_variants(folders, tmp_path):
    g = tmp_path / "g.json"
    tiny_genotype(TaskConfig(name="denoise", channels=1)).save(g)
    summary = inference.main(["--genotype", str(g), "--repeats", "1", "--warmup", "0",
                              "--threads", "1", "--variants", "eager,channels_last,onnxruntime",
                              "--denoise-size", "33x21", "--sr-size", "11x9",
                              "--json", str(tmp_path / "i.json")])
    assert json.loads((tmp_path / "i.json").read_text())["benchmark"] == "inference"
    models = summary["models"]
    assert set(models["denoise"]) == {"hinas", "dncnn"} and set(models["sr"]) == {"hinas",
                                                                                   "fsrcnn"}
    assert models["denoise"]["hinas"]["genotype"] == "g"
    assert models["sr"]["hinas"]["genotype"] == "built-in"
    assert models["sr"]["fsrcnn"]["input"] == [11, 9, 3]
    for entries in models.values():
        for m in entries.values():
            assert m["params"] > 0 and m["macs"] > 0
            assert m["latency_s"]["eager"] > 0 and m["latency_s"]["channels_last"] > 0
            ort = m["latency_s"]["onnxruntime"]
            assert isinstance(ort, float) or ort.startswith("unavailable: ")


def test_inference_times_the_folded_copy_beside_bm3d(tmp_path):
    summary = inference.main(["--tasks", "denoise", "--repeats", "1", "--warmup", "0",
                              "--threads", "1", "--variants", "eager,folded",
                              "--denoise-size", "33x21", "--bm3d-sigma", "25",
                              "--json", str(tmp_path / "i.json")])
    assert len(summary["load_1min"]) == 2
    for m in summary["models"]["denoise"].values():
        assert m["latency_s"]["folded"] > 0 and m["fold_speedup"] > 0
    bm3d = summary["bm3d"]
    assert bm3d["input"] == [33, 21, 1] and bm3d["sigma"] == 25
    if isinstance(bm3d["latency_s"], str):  # the optional package is not installed
        assert bm3d["latency_s"].startswith("unavailable: ")
        assert any(n.startswith("bm3d not timed") for n in summary["notes"])
        assert summary["models"]["denoise"]["hinas"]["bm3d_ratio"] is None
    else:
        assert summary["models"]["denoise"]["hinas"]["bm3d_ratio"] > 0
    text = inference.markdown(summary)
    assert "| folded (ms) |" in text and "latency ratio eager / folded" in text


def test_packaging_a_jpeg_model_scores_it_beside_the_jpeg_input(folders, tmp_path, monkeypatch):
    from hinas.models.pretrained import headline, model_card

    run = train_tiny(tmp_path / "run", folders["gray"],
                     tiny_genotype(TaskConfig(name="jpeg", quality=[10, 40])),
                     "--task", "jpeg", "--quality", "10:40", "--iters", "3")
    write_photos(tmp_path / "data" / "Set12", GRAY_PHOTOS[:2], 40)
    monkeypatch.setattr(pretrained, "WEIGHTS", tmp_path / "weights")
    info = pretrained.main([
        "--run", str(run), "--name", "jpeg-test", "--data", str(tmp_path / "data"),
        "--unseen", "skimage", "--unseen-name", "held-out", "--unseen-count",
        "1", "--description", "d", "--genotype-source", "g", "--command", "c",
        "--train-data", "t", "--recipe", "r", "--machine", "m", "--limits", "l",
        "--repeats", "1"])
    assert [(r["test"], r["quality"], r["images"]) for r in info["results"]] == [
        ("Set12", 10, 2), ("Set12", 20, 2), ("Set12", 30, 2),
        ("held-out", 10, 1), ("held-out", 20, 1), ("held-out", 30, 1)]
    q10, q30 = info["results"][0], info["results"][2]
    assert 15 < q10["baseline_psnr"] < q30["baseline_psnr"]  # the JPEG input, scored
    assert info["headline"] == {"test": "Set12", "quality": 10, "anchor": "JPEG input",
                                "anchor_psnr": q10["baseline_psnr"], "anchor_source": "measured"}
    assert headline(info).startswith(f"Set12 q=10: {q10['psnr']:.2f} dB (JPEG input ")
    assert info["cost_input"] == [481, 321] and info["latency_s"] > 0
    card = (tmp_path / "weights" / "jpeg-test" / "card.md").read_text()
    assert card == model_card(info) and "gray JPEG artefact removal, quality 10–40" in card
    gain = q10["psnr"] - q10["baseline_psnr"]
    assert "JPEG input, measured here (dB / SSIM)" in card and f"| {gain:+.2f} |" in card
    assert "central crops, q=25" in card
    assert "![training loss and validation PSNR](curves.png)" in card
    assert (tmp_path / "weights" / "jpeg-test" / "curves.png").stat().st_size > 0


def test_packaging_an_sr_model_scores_an_unseen_folder_once_per_setting(folders, tmp_path,
                                                                       monkeypatch):
    run = train_tiny(tmp_path / "run", folders["rgb"],
                     tiny_genotype(TaskConfig(name="sr", channels=3, scale=2)))
    for test in ("Set5", "Set14"):
        write_photos(tmp_path / "data" / test, RGB_PHOTOS[:1], 40)
    monkeypatch.setattr(pretrained, "WEIGHTS", tmp_path / "weights")
    info = pretrained.main([
        "--run", str(run), "--name", "sr-test", "--data", str(tmp_path / "data"),
        "--unseen", str(folders["rgb_test"]), "--unseen-name", "held-out",
        "--description", "d", "--genotype-source", "g", "--command", "c",
        "--train-data", "t", "--recipe", "r", "--machine", "m", "--limits", "l",
        "--repeats", "1"])
    assert [(r["test"], r["scale"], r["images"]) for r in info["results"]] == [
        ("Set5", 2, 1), ("Set14", 2, 1), ("held-out", 2, 1)]  # Set5 and Set14 share one setting
    assert all(r["baseline_psnr"] > 10 for r in info["results"])  # bicubic, on the same inputs


def test_training_speed_compares_settings_to_the_baseline_at_equal_iterations(folders, tmp_path):
    summary = training_speed.main([
        "--data-denoise", str(folders["gray"]), "--data-sr", str(folders["rgb"]),
        "--preset", "tiny", "--iters", "4", "--skip", "1", "--settings", "bf16,compile",
        "--compile-limit", "0.5", "--json", str(tmp_path / "t.json")])
    assert json.loads((tmp_path / "t.json").read_text())["benchmark"] == "training_speed"
    for runs in summary["runs"].values():
        assert list(runs) == ["baseline", "bf16", "compile"]
        base, bf16 = runs["baseline"], runs["bf16"]
        assert base["ratio"] == 1 and base["delta_psnr_db"] == 0 and base["equal_quality"]
        assert bf16["iters_per_s"] > 0 and bf16["ratio"] > 0 and bf16["val_psnr"] > 10
        assert bf16["equal_quality"] == (abs(bf16["delta_psnr_db"]) <= 0.05)
        assert "over its limit of 0.5 s" in runs["compile"]["unavailable"]
        assert all(len(r["load_1min"]) == 2 for r in runs.values())


@pytest.fixture(scope="module")
def zoo_data(tmp_path_factory):
    """A small stand-in for the staged data folder: photographs in every folder the zoo reads."""
    root = tmp_path_factory.mktemp("zoo-data")
    for folder, names in (("BSDS500/train", RGB_PHOTOS[:3]), ("BSDS500/val", RGB_PHOTOS[3:5]),
                          ("T91", RGB_PHOTOS[:3]), ("Set5/HR", RGB_PHOTOS[5:]),
                          ("Set14/HR", RGB_PHOTOS[4:5]), ("Set12", GRAY_PHOTOS[:1])):
        write_photos(root / folder, names, 72, ".jpg" if folder.startswith("BSDS500") else ".png")
    return root


def test_gpu_zoo_dry_run_checks_every_model_data_folder_and_card_on_the_cpu(zoo_data, tmp_path,
                                                                           capsys):
    summary = gpu_zoo.main(["--dry-run", "--data", str(zoo_data), "--out", str(tmp_path)])
    plan = capsys.readouterr().out.splitlines()
    assert summary["data"] == {"BSDS500-kept": 4, "Set12": 1, "Set14": 1, "Set5": 1, "T91": 3}
    assert list(summary["models"]) == list(gpu_zoo.ZOO)
    colour = next(line for line in plan if line.startswith("denoise-color-blind: hinas train"))
    assert "--genotype benchmarks/results/genotypes/denoise_color_blind_from_gray.json" in colour
    assert "--device cuda" in colour and "--set train.batch_size=128" in colour
    assert " && hinas train --out runs/gpu-zoo/denoise-color-blind --resume --set " \
           "train.decay_from=1 --budget Ns" in colour
    for name, entry in summary["models"].items():
        assert "error" not in entry and "card_error" not in entry, name
        assert entry["iterations"] == 2 and entry["campaign"].startswith("done"), name
        assert [p["piece"] for p in entry["pieces"]] == ["new", "decay"]
        assert all(r["psnr"] > 5 for r in entry["card"]["results"]), name
    assert [r["test"] for r in summary["models"]["denoise-color-blind"]["card"]["results"]] == \
        ["Set5"] * 3  # RGB images for the colour denoiser
    with tarfile.open(tmp_path / gpu_zoo.ARCHIVE) as tar:
        names = set(tar.getnames())
    for name in gpu_zoo.ZOO:
        assert {f"gpu-zoo/{name}/card/card.md", f"gpu-zoo/{name}/campaign.jsonl",
                f"gpu-zoo/{name}/model.safetensors"} <= names, name
        assert f"gpu-zoo/{name}/last.pt" not in names  # done: nothing left to train
    assert len(list(tmp_path.iterdir())) == 2  # the archive and gpu_zoo.json come back


def test_gpu_zoo_goes_on_after_a_failure_and_a_rerun_continues(zoo_data, tmp_path, monkeypatch):
    args = gpu_zoo.parse_args(["--data", str(zoo_data), "--runs", str(tmp_path / "gpu-zoo"),
                               "--out", str(tmp_path / "out"), "--campaign", "--models",
                               "denoise-gray-blind,sr-x4,sr-x2"])
    real = gpu_zoo.run_hinas
    monkeypatch.setattr(gpu_zoo, "run_hinas", lambda argv: "hinas: error: broken"
                        if "--scale" in argv and "4" in argv else real(argv))
    models = gpu_zoo.run_zoo(args, smoke=True)["models"]
    assert models["sr-x4"]["error"] == "hinas: error: broken"
    assert models["sr-x2"]["error"].startswith("not started: sr-x4")
    assert models["denoise-gray-blind"]["iterations"] == 1  # one constant piece: unfinished
    with tarfile.open(tmp_path / "out" / gpu_zoo.ARCHIVE) as tar:
        assert "gpu-zoo/denoise-gray-blind/last.pt" in tar.getnames()  # another job goes on
    monkeypatch.setattr(gpu_zoo, "run_hinas", real)
    monkeypatch.setattr(gpu_zoo, "ARCHIVE_LIMIT", 1)
    summary = gpu_zoo.run_zoo(args, smoke=True)
    models = summary["models"]
    assert models["denoise-gray-blind"]["iterations"] == 2  # continued, not started again
    assert [p["piece"] for p in models["denoise-gray-blind"]["pieces"]] == ["new", "constant"]
    assert "error" not in models["sr-x4"] and "error" not in models["sr-x2"]
    assert "unfinished runs cannot be continued" in summary["archive"]["warning"]


def test_gpu_zoo_stages_the_data_and_refuses_without_cuda(zoo_data, tmp_path, monkeypatch):
    with pytest.raises(SystemExit, match="lacks BSDS500, Set12, Set14, Set5, T91"):
        gpu_zoo.main(["--stage", str(tmp_path), "--data", str(tmp_path / "data")])
    staged = gpu_zoo.main(["--stage", str(zoo_data), "--data", str(tmp_path / "data")])
    assert staged["staged_bytes"] > 0 and (tmp_path / "data" / "Set5" / "HR").is_dir()
    kept = {p.name for p in (tmp_path / "data" / gpu_zoo.KEPT_BSDS).rglob("*.jpg")}
    val = sorted(p.name for p in (zoo_data / "BSDS500" / "val").iterdir())
    assert len(kept) == 4 and val[0] not in kept and val[1] in kept  # the held-back one is out
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.delenv("OUT", raising=False)
    with pytest.raises(SystemExit):
        gpu_zoo.main(["--data", str(zoo_data)])  # no --out, no $OUT
    with pytest.raises(SystemExit, match="^gpu_zoo: no CUDA device here") as stop:
        gpu_zoo.main(["--data", str(zoo_data), "--out", str(tmp_path / "o")])
    assert "\n" not in str(stop.value) and not (tmp_path / "o").exists()


def test_search_cost_measures_each_mode_in_a_subprocess_and_merges(folders, tmp_path):
    common = ["--data", str(folders["gray"]), "--preset", "tiny", *TINY_SEARCH, "--threads", "1"]
    first = search_cost.main([*common, "--modes", "sharing", "--out", str(tmp_path / "runs"),
                              "--json", str(tmp_path / "a.json")])
    assert json.loads((tmp_path / "a.json").read_text()) == first
    assert "eq6" not in first and "time_ratio" not in first
    assert (tmp_path / "runs" / "sharing" / "genotype.json").is_file()
    summary = search_cost.main([*common, "--modes", "eq6", "--merge", str(tmp_path / "a.json")])
    for mode in ("sharing", "eq6"):
        assert summary[mode]["seconds"] > 0 and summary[mode]["peak_rss_mb"] > 0
        assert summary[mode]["epochs"] == 2
        assert summary[mode]["params"] > 0 and summary[mode]["macs"] > 0
    assert summary["sharing"] == first["sharing"]
    assert summary["time_ratio"] > 0 and summary["memory_ratio"] > 0
    table = search_cost.markdown(summary)
    assert "| eq6 |" in table and "hinas search --task denoise --sigma 50 --preset tiny" in table
    assert summary["command"].count("benchmarks/search_cost.py") == 2
    other = {**first, "config": {**first["config"], "seed": 1}}
    (tmp_path / "b.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="another run"):
        search_cost.merge(summary, str(tmp_path / "b.json"))


@pytest.mark.slow
def test_distributed_throughput_measures_both_modes_and_checks_the_ranks(folders, tmp_path):
    summary = distributed_throughput.main([
        "--data", str(folders["gray"]), "--preset", "tiny", "--epochs", "3",
        "--json", str(tmp_path / "d.json")])
    assert json.loads((tmp_path / "d.json").read_text()) == summary
    one, two = summary["modes"]["1x2"], summary["modes"]["2x1"]
    assert (one["processes"], one["threads"], two["processes"], two["threads"]) == (1, 2, 2, 1)
    assert one["steps_per_epoch"] == two["steps_per_epoch"] and one["timed_epochs"] == 1
    assert all(m["seconds_per_step"] > 0 and m["wall_seconds"] > 0 for m in (one, two))
    assert len(two["genotypes"]) == 2 and two["ranks_agree"]
    assert summary["command"].startswith("python benchmarks/distributed_throughput.py")
    assert "| 2x1 | 2 × 1 |" in distributed_throughput.markdown(summary)


def _fixture_results(folder: Path) -> None:
    quality_summary = {
        "benchmark": "quality", "device": "cpu", "notes": ["bm3d skipped"],
        "config": {"task": "denoise", "sigma": 50.0, "scale": 4, "test": "BSD68", "iters": 10,
                   "batch_size": 4, "crop": 24, "preset": "tiny", "cost_size": [481, 321],
                   "images": 68, "repeats": 3, "threads": 2},
        "methods": {
            "hinas": {"kind": "network", "psnr": 26.5, "ssim": 0.73, "params": 340000, "macs": 2e10,
                      "latency_s": 0.2, "search_seconds": 60.0, "train_seconds": 100.0},
            "noisy": {"kind": "classic", "psnr": 14.2, "ssim": 0.2, "params": None, "macs": None,
                      "latency_s": None, "search_seconds": None, "train_seconds": None}}}
    supernet = {"config": {"task": "denoise", "width": 10, "width_factors": [1.0, 2.0, 4.0],
                           "layers": 3, "nodes": 4, "batch": 6, "patch": 64},
                "sharing": {"peak_rss_mb": 4000.0, "step_s": 10.0, "params": 1000},
                "eq6": {"peak_rss_mb": 7000.0, "step_s": 30.0, "params": 1000},
                "memory_ratio": 1.75, "time_ratio": 3.0, "theory_ratio": 1.706, "device": "cpu"}
    quality_summary["command"] = "python benchmarks/quality.py --iters 10"
    (folder / "quality_denoise.json").write_text(json.dumps(quality_summary))
    (folder / "supernet_cost.json").write_text(json.dumps(supernet))


def test_report_names_test_sets_and_load_in_words():
    assert report.test_set_name("data/Set14/HR") == "Set14"
    assert report.test_set_name("data/Set12") == "Set12"
    assert report.load_text({"a": {"load_1min": 1.94}, "b": {"load_1min": 0.5},
                             "bm3d": {"load_1min": None}}) == \
        "1-min load average 0.5–1.9 while measured"
    assert report.load_text({"a": {}}).startswith("machine load not recorded")


def test_the_committed_benchmarks_doc_is_what_the_report_renders():
    """docs/benchmarks.md holds, between its markers, exactly the tables of the committed
    results (regenerate with `python benchmarks/report.py --doc docs/benchmarks.md`)."""
    root = Path(__file__).parents[1]
    text = (root / "docs" / "benchmarks.md").read_text()
    rendered = report.render(root / "benchmarks" / "results", root / "docs", draw=False)
    assert report.replace_section(text, rendered) == text


def test_report_replaces_the_marked_section_of_the_benchmarks_doc(tmp_path, capsys):
    _fixture_results(tmp_path)
    doc = tmp_path / "docs" / "benchmarks.md"
    doc.parent.mkdir()
    doc.write_text("# title\n\n<!-- results:start -->\nold table\n<!-- results:end -->\nend\n")
    report.main(["--results", str(tmp_path), "--doc", str(doc)])
    text = doc.read_text()
    assert text.startswith("# title\n\n<!-- results:start -->\n") and text.endswith(
        "<!-- results:end -->\nend\n")
    assert "old table" not in text
    assert "| hinas | 26.50 | 0.7300 | 0.3400 | 20.00 | 200.0 | 60 | 100 |" in text
    assert "| noisy | 14.20 | 0.2000 | – |" in text
    assert "| eq6 | 30.00 | 7000 | 1,000 |" in text and "memory Eq. 6 / Eq. 5 1.75" in text
    assert "Measured with `python benchmarks/quality.py --iters 10`" in text
    assert f"![PSNR against latency](../{report.PLOT})" in text  # relative to the doc
    assert (tmp_path / report.PLOT).stat().st_size > 1000
    # without markers: the file is left alone and the markdown printed
    doc.write_text("no markers\n")
    capsys.readouterr()
    report.main(["--results", str(tmp_path), "--doc", str(doc)])
    assert doc.read_text() == "no markers\n" and "| hinas |" in capsys.readouterr().out


def test_search_vs_random_runs_in_pieces_and_reports(folders, tmp_path):
    common = ["--data", str(folders["gray"]), "--test", str(folders["gray_test"]),
              "--preset", "tiny", "--iters", "2", "--search-seeds", "0,1", "--rsws-seeds", "0",
              "--random", "3", "--train-seeds", "2", "--tolerance", "0.5", "--threads", "1",
              "--out", str(tmp_path / "work"), *TINY_SEARCH, "--set", "train.val_every=1",
              "--val", str(folders["gray"]), "--val-count", "2", "--repeat", "hinas_s0,random_0"]
    assert search_vs_random.main([*common, "--units", "hinas_s0,random_1"]) == {}
    assert sorted(p.name for p in (tmp_path / "work" / "train").iterdir()) == [
        "hinas_s0", "random_1"]
    search_vs_random.main([*common, "--units", "hinas_s1,rsws_s0,random_0,hinas_s0_t1,"
                                               "random_0_t1,random_2"])
    summary = search_vs_random.main([*common, "--report", "--json", str(tmp_path / "r.json"),
                                     "--export", str(tmp_path / "export")])
    assert set(summary["scores"]) == {"hinas_s0", "hinas_s1", "rsws_s0", "random_0", "random_1",
                                      "random_2", "hinas_s0_t1", "random_0_t1"}
    entry = summary["scores"]["random_0"]
    assert len(entry["val_per_image_psnr"]) == 2 and len(entry["per_image_psnr"]) == 1
    assert entry["curve_early_iter"] == 1 and entry["curve_full_psnr"] is not None
    stats = summary["statistics"]
    assert stats["n"] == {"hinas": 2, "rsws": 1, "random": 3, "training_seeds": 2}
    truth = stats["ground_truth"]["val_psnr"]
    assert truth["n_random"] == 3 and truth["training_pairs"] == 2
    assert {"iqr_db", "range_db", "training_seed_std_db", "flat", "early_vs_full_spearman"} <= set(
        truth)
    assert 0 <= stats["p_hinas_gt_random"] <= 1 and len(stats["targets"]) == 3
    reference = summary["scores"]["hinas_s0"]["params"]
    for name in ("random_0", "random_1"):
        assert abs(summary["scores"][name]["params"] - reference) <= 0.5 * reference
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert set(manifest["models"]) == set(summary["scores"])
    assert (tmp_path / "export" / "models" / "random_0" / "model.safetensors").exists()
    assert (tmp_path / "export" / "psnr_vs_params.png").exists()
    with pytest.raises(SystemExit, match="unknown unit"):
        search_vs_random.main([*common, "--units", "nope"])
    at = common.index("--iters") + 1
    longer = [*common[:at], "4", *common[at + 1:]]  # a finished training is extended
    search_vs_random.main([*longer, "--units", "random_1"])
    assert search_vs_random.trained_iterations(tmp_path / "work" / "train" / "random_1") == 4
    work = tmp_path / "work" / "genotypes"
    signals = selection_signals.main([
        "--ground-truth", str(tmp_path / "r.json"), "--genotypes", str(tmp_path / "export" /
                                                                       "genotypes"),
        "--hinas", str(work / "hinas_s0"), str(work / "hinas_s1"), "--rsws", str(work / "rsws_s0"),
        "--bootstrap", "50", "--json", str(tmp_path / "s.json")])
    assert set(signals["signals"]) == {"alpha", "oneshot_hinas", "oneshot_rsws", "perturb",
                                       "params", "macs", "latency"}
    assert set(signals["ground_truth"]) == {"random_0", "random_1", "random_2"}
    alpha = signals["signals"]["alpha"]
    assert len(alpha["per_seed"]) == 2 and len(alpha["seed_agreement_tau"]) == 1
    assert all(-1 <= t["tau"] <= 1 for t in alpha["per_seed"])
    assert signals["best_signal"] in signals["signals"]
    hinas_runs = [r for r in signals["runs"] if r["kind"] == "hinas"]
    assert all(len(r["path_psnr"]) == 5 and r["viterbi_path"] for r in hinas_runs)
    from_work = selection_signals.main([  # the work folder's <name>/genotype.json layout
        "--ground-truth", str(tmp_path / "r.json"), "--genotypes", str(work), "--hinas",
        str(work / "hinas_s0"), "--signals", "alpha,params", "--bootstrap", "50"])
    assert from_work["signals"]["alpha"]["per_seed"] == alpha["per_seed"][:1]


def test_search_vs_random_statistics_from_known_scores():
    args = search_vs_random.parse_args(["--data", "d", "--test", "t", "--iters", "1", "--out",
                                        "o", "--random", "4", "--budget-macs", "1",
                                        "--params-seeds", "0,1"])
    psnr = {"hinas_s0": 30.0, "hinas_s1": 30.2, "hinas_s2": 30.1, "rsws_s0": 29.0,
            "rsws_s1": 29.1, "rsws_s2": 29.2, "random_0": 28.0, "random_1": 28.5,
            "random_2": 29.5, "random_3": 30.15, "hinas_s0_t1": 30.05, "hinas_s0_t2": 29.9,
            "params_s0": 30.3, "params_s1": 27.0}
    scores = {n: {"psnr": v} for n, v in psnr.items()}
    stats = search_vs_random.statistics(scores, args, {})
    assert stats["percentile_among_random"] == {"hinas_s0": 75.0, "hinas_s1": 100.0,
                                                "hinas_s2": 75.0, "params_s0": 100.0,
                                                "params_s1": 0.0}
    assert stats["mean_gap_params_vs_random_db"] == pytest.approx(28.65 - 29.0375)
    assert stats["p_params_gt_random"] > 0.05
    assert any(t.startswith("MISSED: the params search above random") for t in stats["targets"])
    assert stats["mean_gap_vs_random_db"] == pytest.approx(30.1 - 29.0375)
    low, high = stats["mean_gap_vs_random_ci95_db"]
    assert low < stats["mean_gap_vs_random_db"] < high
    assert stats["p_hinas_gt_rsws"] == pytest.approx(0.05)  # exact U test, 3 vs 3, all above
    assert stats["training_seed_spread_db"] == pytest.approx(0.15)
    assert any(t.startswith("met: HiNAS above RSWS") for t in stats["targets"])


def _budget_report(budget: float, psnr: dict[str, float], latency: dict[str, float]) -> dict:
    return {"config": {"budget_macs": budget}, "device": "cpu",
            "scores": {n: {"genotype": n.rpartition("_t")[0] if "_t" in n else n,
                           "val_psnr": v, "psnr": v - 1, "latency_s": latency.get(n, 0.2)}
                       for n, v in psnr.items()}}


def test_budget_search_judges_each_budget_and_the_front(tmp_path):
    from benchmarks import budget_search

    wins = _budget_report(4.4, {"hinas_s0": 30.0, "hinas_s1": 30.1, "hinas_s2": 30.2,
                                "rsws_s0": 29.5, "params_s0": 28.0, "random_0": 29.0,
                                "random_1": 29.1,
                                "random_2": 29.2, "random_3": 29.3, "random_0_t1": 29.02},
                          {"hinas_s0": 0.20, "random_3": 0.10})
    loses = _budget_report(6.2, {"hinas_s0": 29.0, "hinas_s1": 29.05, "hinas_s2": 29.1,
                                 "random_0": 29.6, "random_1": 29.4, "random_2": 29.2,
                                 "random_0_t1": 29.5}, {"random_0": 0.3})
    paths = []
    for k, budget in enumerate((wins, loses)):
        paths.append(tmp_path / f"r{k}.json")
        paths[-1].write_text(json.dumps(budget))
    signals = tmp_path / "s.json"
    signals.write_text(json.dumps({"signals": {"alpha": {"mean_tau": 0.1},
                                               "macs": {"mean_tau": 0.4}}}))
    summary = budget_search.main(["--reports", *map(str, paths), "--signals", str(signals),
                                  str(signals), "--plot", str(tmp_path / "p.png")])
    first, second = summary["budgets"]
    assert first["hinas"]["percentile_among_random"] == {"hinas_s0": 100.0, "hinas_s1": 100.0,
                                                         "hinas_s2": 100.0}
    assert first["hinas"]["beats_random"] and not second["hinas"]["beats_random"]
    assert first["training_seed_std_db"] == pytest.approx(0.02 / 2 ** 0.5, abs=1e-4)
    assert first["rsws"]["percentile_among_random"] == {"rsws_s0": 100.0}
    margins = summary["front"]["searched"]
    # the front is over every budget's random networks: 6.2 G's random_1 is as fast
    assert margins["hinas_s0@4.4G"]["margin_db"] == pytest.approx(30.0 - 29.4)
    assert margins["hinas_s0@6.2G"]["margin_db"] == pytest.approx(29.0 - 29.4)  # random_1
    assert summary["targets"][0].startswith("MISSED") and "1 of 2 budgets" in summary["targets"][0]
    assert summary["targets"][1].startswith("MISSED") and "hinas_s0@6.2G" in summary["targets"][1]
    assert summary["best_signal"] == "macs"
    assert first["params"]["percentile_among_random"] == {"params_s0": 0.0}
    assert "params" not in second and not first["params"]["beats_random"]
    assert summary["targets"][2].startswith("MISSED: the params search above random")
    assert "params_s0@4.4G" in summary["targets"][3]
    assert (tmp_path / "p.png").stat().st_size > 10_000
    paths[0].write_text(json.dumps({**wins, "config": {}}))
    with pytest.raises(SystemExit, match="not a report of a --budget-macs run"):
        budget_search.main(["--reports", str(paths[0])])


def test_cost_model_predicts_macs_exactly_and_reports_the_latency_error(tmp_path):
    from benchmarks import cost_model

    summary = cost_model.main(["--preset", "tiny", "--networks", "2", "--repeats", "1",
                               "--table", str(tmp_path / "t.json"), "--json",
                               str(tmp_path / "c.json")])
    assert summary["macs_error_max_abs"] < 1e-9 and len(summary["networks"]) == 2
    assert all(r["latency_measured_ms"] > 0 for r in summary["networks"])
    assert (tmp_path / "t.json").exists() and summary["latency_error"]["max_abs"] >= 0
    g = tmp_path / "g.json"
    tiny_genotype(TaskConfig(channels=1)).save(g)
    again = cost_model.main(["--preset", "tiny", "--networks", "0", "--genotype", str(g),
                             "--repeats", "1", "--with-table", str(tmp_path / "t.json")])
    assert again["table"] == "t.json" and [r["name"] for r in again["networks"]] == ["g"]
    with pytest.raises(SystemExit, match="width multiplier"):
        cost_model.main(["--preset", "tiny", "--networks", "1", "--multiplier", "3",
                         "--with-table", str(tmp_path / "t.json")])


def test_zoo_campaign_trains_pieces_saves_and_continues_from_the_committed_state(tmp_path):
    """Two pieces of the family-built blind and noise-map denoisers, the state saved, then a
    fresh work folder continues from it; the held-back photographs of the family benchmark are
    not trained on."""
    from benchmarks import zoo

    bsds = tmp_path / "bsds"
    write_photos(bsds / "train", GRAY_PHOTOS[:3], 48, ".jpg")
    write_photos(bsds / "val", GRAY_PHOTOS[3:], 48, ".jpg")
    tiny = ["--set", "train.batch_size=2", "--set", "train.crop=24", "--set",
            "train.val_crop=32", "--set", "train.val_every=2"]
    common = ["--bsds", str(bsds), "--family", "start2-params", "--piece", "0.02",
              "--committed", str(tmp_path / "committed"), "--save", *tiny]
    first = zoo.main([*common, "--work", str(tmp_path / "w1"), "--model", "denoise-gray-blind",
                      "denoise-gray-map"])
    assert set(first["models"]) == {"denoise-gray-blind", "denoise-gray-map"}
    saved = tmp_path / "committed" / "denoise-gray-map"
    assert (saved / "last.pt").exists() and (saved / "campaign.jsonl").exists()
    busy = tmp_path / "w2" / "denoise-gray-blind"  # another process's campaign, mid-piece
    shutil.copytree(tmp_path / "committed" / "denoise-gray-blind", busy)
    with open(busy / "metrics.jsonl", "a") as f:
        f.write('{"iter": 999}\n')
    with_bm3d = importlib.util.find_spec("bm3d") is not None  # an optional package
    again = zoo.main([*common, "--work", str(tmp_path / "w2"), "--model", "denoise-gray-map",
                      *(["--heldout"] if with_bm3d else [])])
    assert '"iter": 999' not in (  # a piece saves only its own campaign
        tmp_path / "committed" / "denoise-gray-blind" / "metrics.jsonl").read_text()
    assert again["models"]["denoise-gray-map"]["pieces"] == 2
    if with_bm3d:
        beside = again["models"]["denoise-gray-blind"]["heldout"]
        assert set(beside) == {"15.0", "25.0", "50.0"}
        assert beside["25.0"]["over_bm3d"] == pytest.approx(
            beside["25.0"]["psnr"] - beside["25.0"]["bm3d"], abs=1e-3)
    trained = json.loads((tmp_path / "w2" / "denoise-gray-map" / "model.json").read_text())
    assert trained["task"]["noise_map"] is True
    assert yaml.safe_load((tmp_path / "w2" / "denoise-gray-map" / "config.yaml").read_text()
                          )["train"]["ema"] == 0.999  # the campaigns ship the weights' average
    held_back = {p.name for p in (tmp_path / "w1" / "data" / "heldout").iterdir()}
    assert held_back and not held_back & set(trained["meta"]["data_split"]["train"])


@pytest.mark.skipif(importlib.util.find_spec("bm3d") is None, reason="bm3d not installed")
def test_zoo_scores_the_colour_campaign_beside_cbm3d_once(tmp_path, monkeypatch):
    """The colour denoiser's held-back photographs are scored at σ 25 and 50 beside CBM3D on the
    same noisy RGB inputs; CBM3D is measured once and kept in the committed state."""
    from benchmarks import zoo

    from hinas.config import TaskConfig
    from hinas.jobs.evaluate import evaluate_model, load_test_images

    bsds = tmp_path / "bsds"
    write_photos(bsds / "train", RGB_PHOTOS[:2], 40, ".jpg")
    write_photos(bsds / "val", RGB_PHOTOS[2:], 40, ".jpg")
    common = ["--bsds", str(bsds), "--family", "start2-params", "--piece", "0.01",
              "--committed", str(tmp_path / "committed"), "--work", str(tmp_path / "w"),
              "--set", "train.batch_size=2", "--set", "train.crop=24", "--set",
              "train.val_crop=32"]
    first = zoo.main([*common, "--model", "denoise-color-blind", "--heldout"])
    rows = first["models"]["denoise-color-blind"]["heldout"]
    assert set(rows) == {"25.0", "50.0"}
    images = load_test_images(tmp_path / "w" / "data" / "heldout", 3)[0]
    cbm3d = evaluate_model("bm3d", TaskConfig(sigma=[50.0], channels=3), images, quiet=True)
    assert rows["50.0"]["bm3d"] == pytest.approx(cbm3d.mean["psnr"], abs=1e-3)
    assert rows["50.0"]["over_bm3d"] == pytest.approx(
        rows["50.0"]["psnr"] - rows["50.0"]["bm3d"], abs=1e-3)
    monkeypatch.setattr(zoo, "ANCHOR_SIGMAS", {3: ()})  # a rerun measures CBM3D no more
    assert zoo.anchor_scores(tmp_path / "w", tmp_path / "committed", 3)["25.0"] == \
        pytest.approx(rows["25.0"]["bm3d"], abs=1e-3)


def test_zoo_bad_input_is_one_line_naming_the_campaign_and_the_file(tmp_path):
    from benchmarks import zoo

    bsds = tmp_path / "bsds"
    write_photos(bsds / "train", GRAY_PHOTOS[:2], 40, ".jpg")
    write_photos(bsds / "val", GRAY_PHOTOS[2:], 40, ".jpg")
    with pytest.raises(SystemExit, match=r"^zoo: jpeg-blind: .*\.jpg: image is 40x40, smaller "
                                         r"than the 64x64 crop$"):
        zoo.main(["--bsds", str(bsds), "--family", "start2-params", "--piece", "0.01",
                  "--work", str(tmp_path / "w"), "--committed", str(tmp_path / "c"),
                  "--model", "jpeg-blind", "--set", "train.crop=64"])


def test_search_vs_random_at_a_macs_budget(folders, tmp_path):
    """With --budget-macs the searches run under it and every random genotype is within the
    tolerance of it (its MACs predicted exactly and checked against the built network)."""
    from hinas.models.cost import model_cost
    from hinas.models.folder import ModelSpec
    from hinas.space.genotype import Genotype

    work = tmp_path / "work"
    search_vs_random.main(["--data", str(folders["gray"]), "--test", str(folders["gray_test"]),
                           "--preset", "tiny", "--iters", "2", "--search-seeds", "0",
                           "--rsws-seeds", "0", "--params-seeds", "0", "--random", "2",
                           "--tolerance", "0.1", "--budget-macs", "0.15", "--threads", "1",
                           "--out", str(work), *TINY_SEARCH, "--genotypes-only"])
    for name in ("random_0", "random_1"):
        g = Genotype.load(search_vs_random.genotype_path(work, name))
        net = ModelSpec("hinas", g.task, {"width_multiplier": 1.0}, g).build()
        macs = model_cost(net, g.task, repeats=0).macs / 1e9
        assert abs(macs / 0.15 - 1) <= 0.1 and g.meta["budget_macs"] == 0.15
    for name in ("hinas_s0", "rsws_s0", "params_s0"):
        cost = Genotype.load(search_vs_random.genotype_path(work, name)).meta["cost"]
        assert cost["budget"] == 0.15 and cost["measured"] <= 0.15
    drawn = Genotype.load(search_vs_random.genotype_path(work, "params_s0")).meta
    assert drawn["strategy"] == "params" and drawn["draw_params"] >= drawn["draw_params_median"]
    with pytest.raises(SystemExit):
        search_vs_random.parse_args(["--data", "d", "--test", "t", "--iters", "1", "--out", "o",
                                     "--params-seeds", "0"])
    dest = tmp_path / "export"
    for budget in ("0.15", "0.2"):
        common = ["--data", str(folders["gray"]), "--test", str(folders["gray_test"]),
                  "--preset", "tiny", "--iters", "2", "--search-seeds", "0", "--rsws-seeds", "",
                  "--random", "2", "--tolerance", "0.1", "--budget-macs", budget, "--threads",
                  "1", "--out", str(tmp_path / budget), *TINY_SEARCH, "--train-seeds", "2",
                  "--repeat", "random_0"]
        search_vs_random.main([*common, "--units", "random_0,random_1,random_0_t1"])
        summary = search_vs_random.main([*common, "--report", "--export", str(dest)])
        assert summary["config"]["budget_macs"] == float(budget)
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["budget_macs"] == [0.15, 0.2]
    assert set(manifest["models"]) == {f"random_{b}g_{k}" for b in ("0.15", "0.2")
                                       for k in ("0", "1", "0_t1")}
    entry = manifest["models"]["random_0.2g_0_t1"]
    assert entry["budget_macs"] == 0.2 and entry["latency_s"] > 0
    assert (dest / entry["folder"] / "model.safetensors").exists()
    assert (dest / entry["genotype"]).exists()
    with pytest.raises(SystemExit, match="another recipe or test"):
        search_vs_random.main([*common, "--iters", "3", "--report", "--export", str(dest)])
    state = tmp_path / "state"
    search_vs_random.main([*common, "--committed", str(state), "--units", "hinas_s0", "--save"])
    saved = state / "0.2g"
    assert list((saved / "train").iterdir()) == [saved / "train" / "hinas_s0"]  # its own only
    search_vs_random.main([*common, "--committed", str(state), "--save"])  # the finished ones
    assert (saved / "train" / "random_0_t1" / "done").exists()
    assert not (saved / "train" / "random_0_t1" / "last.pt").exists()  # finished: not kept
    assert (saved / "genotypes" / "hinas_s0" / "best.pt").exists()  # until its signals exist
    assert (saved / "train" / "hinas_s0" / "model.safetensors").exists()
    again = search_vs_random.main([*common, "--committed", str(state), "--report", "--out",
                                   str(tmp_path / "fresh")])  # a fresh work folder goes on
    assert set(again["scores"]) == {"hinas_s0", "random_0", "random_1", "random_0_t1"}


def test_gpu_zoo_builds_the_family_models_from_the_chosen_family(zoo_data, tmp_path):
    args = gpu_zoo.parse_args(["--data", str(zoo_data), "--runs", str(tmp_path / "gpu-zoo"),
                               "--out", str(tmp_path / "out"), "--campaign", "--models",
                               "denoise-color-blind,sr-x4", "--family", "resolution-macs",
                               "--size", "1.5"])
    colour, sr = args.models
    genotype = Genotype.load(colour.genotype)
    assert genotype.space.levels == "resolution" and genotype.task.channels == 3
    assert colour.width == 1.5 and "resolution-macs" in colour.genotype_source
    assert sr == gpu_zoo.ZOO["sr-x4"]  # SR keeps its own searched network
    entry = gpu_zoo.run_zoo(args, smoke=True)["models"]["denoise-color-blind"]
    assert "error" not in entry and entry["iterations"] == 1
    assert "train.width_multiplier=1.5" in entry["pieces"][0]["command"]


def test_every_zoo_campaign_builds_its_network_under_its_own_settings():
    """Each campaign of the registry: its network builds for its task, its family size and
    overrides reach the config, and a campaign it starts from is one of the registry's."""
    from benchmarks import zoo

    from hinas.config import resolve
    from hinas.models.folder import ModelSpec

    for model in zoo.MODELS.values():
        genotype, arch, build = zoo.network(model, "resolution-macs", model.size)
        task = dict(model.task)
        net = ModelSpec(arch, TaskConfig(**task), build, genotype).build()
        assert sum(p.numel() for p in net.parameters()) > 0, model.name
        cfg = resolve(task.pop("name"), "cpu", task=task, overrides=list(model.overrides))
        for override in model.overrides:
            key, value = override.split("=")
            assert str(getattr(cfg.train, key.split(".")[1])) == value, model.name
        assert model.init_from is None or model.init_from in zoo.MODELS
