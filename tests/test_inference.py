"""Tiled inference band by band: the bands make up exactly the blended output, only about one row
of tiles is held at a time, and `hinas restore --tile` restores a 12000×12000 image in bounded
memory (the restore-memory benchmark, run on a tiny network)."""

import sys
from pathlib import Path

import pytest
import torch

from hinas.config import TaskConfig
from hinas.runtime.inference import tile_starts, tiled_bands
from tiny_runs import tiny_genotype

sys.path.insert(0, str(Path(__file__).parents[1]))  # the repository root: `benchmarks`
from benchmarks import restore_memory  # noqa: E402


def test_bands_cover_the_output_once_and_stay_small():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.PixelShuffle(2))
    x = torch.rand(1, 1, 70, 53)
    read = lambda top, left, h, w: x[:, :, top:top + h, left:left + w]  # noqa: E731
    bands = list(tiled_bands(model, read, 70, 53, 2, 24, 6))
    assert [first for first, _ in bands] == [2 * s for s in tile_starts(70, 24, 6)]
    assert max(band.shape[2] for _, band in bands) <= 2 * 24
    out = torch.cat([band for _, band in bands], dim=2)
    whole = model(x)
    assert out.shape == whole.shape == (1, 1, 140, 106)
    assert (out - whole).abs().max() < 0.2 * (whole.abs().max())  # blended, not stitched
    assert torch.equal(next(tiled_bands(model, read, 70, 53, 2, 70, 6))[1], whole)
    # tiles that do not overlap: the bands are their outputs side by side
    y = torch.rand(1, 1, 72, 48)
    stitched = torch.cat([band for _, band in tiled_bands(
        model, lambda top, left, h, w: y[:, :, top:top + h, left:left + w], 72, 48, 2, 24, 0)],
        dim=2)
    for top in (0, 24, 48):
        for left in (0, 24):
            assert torch.equal(stitched[:, :, 2 * top:2 * top + 48, 2 * left:2 * left + 48],
                               model(y[:, :, top:top + 24, left:left + 24]))


def test_restore_memory_benchmark_reports_json(tmp_path):
    genotype = tmp_path / "g.json"
    tiny_genotype(TaskConfig(sigma=[25.0])).save(genotype)
    summary = restore_memory.main(["--size", "300", "--genotype", str(genotype),
                                   "--width-multiplier", "1", "--tile", "128",
                                   "--json", str(tmp_path / "r.json")])
    assert (tmp_path / "r.json").is_file()
    assert summary["tiled"]["peak_rss_mb"] > 0 and summary["whole"]["peak_rss_mb"] > 0
    assert summary["config"]["size"] == 300 and summary["within_budget"]


@pytest.mark.slow
def test_a_12000_pixel_square_image_restores_in_under_1_5_gb(tmp_path):
    genotype = tmp_path / "g.json"
    tiny_genotype(TaskConfig(sigma=[25.0])).save(genotype)
    summary = restore_memory.main(["--size", "12000", "--genotype", str(genotype),
                                   "--width-multiplier", "1", "--tile", "512"])
    assert summary["tiled"]["peak_rss_mb"] < 1536, summary
    assert "over the limit" in summary["whole"]["refused"]
