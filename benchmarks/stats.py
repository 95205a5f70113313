"""The statistics of the benchmarks that rank architectures: how far apart stand-alone trainings
are against their training noise (`spread_against_noise`), the stand-alone score per genotype
(`standalone_scores`), rank agreement (`kendall`), one-sided tests and bootstrap intervals of a
gap (`p_greater`, `mean_gap_ci95`), and the signal-to-noise ratio of per-batch gradients
(`snr_summary`)."""

from __future__ import annotations


def p_greater(a: list[float], b: list[float]) -> float:
    """One-sided Mann–Whitney U p-value of `a` above `b`."""
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(a, b, alternative="greater").pvalue)


def mean_gap_ci95(a: list[float], b: list[float], resamples: int = 10000, seed: int = 0
                  ) -> list[float]:
    """Bootstrap 95 % interval of mean(a) − mean(b), resampling each group."""
    import numpy as np

    rng = np.random.default_rng(seed)
    gaps = [rng.choice(a, len(a)).mean() - rng.choice(b, len(b)).mean()
            for _ in range(resamples)]
    return [round(float(v), 4) for v in np.percentile(gaps, [2.5, 97.5])]


def spread_against_noise(scores: dict, key: str) -> dict:
    """How much the random architectures differ against training noise, on score `key`: their
    spread (interquartile range, max − min), the training-seed noise (the standard deviation of one
    training, pooled over the genotypes trained with several seeds), whether the space is flat
    at matched size (interquartile range within 2× the noise), and whether the ranking is stable
    (Spearman ρ between the runs' own validation PSNR early, `curve_early_psnr`, and at full
    length ≥ 0.8)."""
    import numpy as np
    from scipy.stats import spearmanr

    rand = {n: s[key] for n, s in scores.items() if n.startswith("random_") and "_t" not in n
            and s.get(key) is not None}
    if len(rand) < 2:
        return {}
    values = np.array(list(rand.values()))
    q1, q3 = np.percentile(values, [25, 75])
    diffs = []
    for name, entry in scores.items():
        base = name.rpartition("_t")[0]
        if "_t" in name and base in scores and entry.get(key) is not None:
            diffs.append(entry[key] - scores[base][key])
    out = {"n_random": len(rand), "mean": round(float(values.mean()), 4),
           "iqr_db": round(float(q3 - q1), 4), "range_db": round(float(np.ptp(values)), 4),
           "best": max(rand, key=rand.get), "worst": min(rand, key=rand.get)}
    if diffs:
        noise = float(np.sqrt(np.mean(np.square(diffs)) / 2))
        out.update(training_pairs=len(diffs), training_seed_std_db=round(noise, 4),
                   training_seed_max_abs_diff_db=round(float(np.max(np.abs(diffs))), 4),
                   flat=bool(q3 - q1 <= 2 * noise),
                   iqr_over_noise=round(float((q3 - q1) / noise), 2) if noise else None)
    early = [(s["curve_early_psnr"], s["curve_full_psnr"]) for n, s in scores.items()
             if "_t" not in n and s.get("curve_early_psnr") is not None
             and s.get("curve_full_psnr") is not None]
    if len(early) > 2:
        rho = spearmanr(*zip(*early, strict=True)).statistic
        out.update(early_vs_full_spearman=round(float(rho), 4), ranking_stable=bool(rho >= 0.8))
        curves = [s["curve_val_psnr"] for n, s in scores.items()
                  if "_t" not in n and s.get("curve_val_psnr")]
        final = max(curves[0], key=int)
        out["curve_spearman_vs_full"] = {
            it: round(float(spearmanr([c[it] for c in curves], [c[final] for c in curves]
                                      ).statistic), 4)
            for it in curves[0] if it != final and all(it in c for c in curves)}
    return out


def standalone_scores(report: dict, key: str) -> dict[str, float]:
    """Stand-alone score `key` of every random genotype of a `search_vs_random.py` report,
    averaged over its training seeds."""
    import numpy as np

    per_genotype: dict[str, list[float]] = {}
    for entry in report["scores"].values():
        if entry["genotype"].startswith("random_") and entry.get(key) is not None:
            per_genotype.setdefault(entry["genotype"], []).append(entry[key])
    return {name: float(np.mean(values)) for name, values in sorted(per_genotype.items())}


def kendall(scores: list[float], truth: list[float], resamples: int, seed: int = 0) -> dict:
    """Kendall τ-b of `scores` against `truth`, with a bootstrap 95 % CI over the items."""
    import numpy as np
    from scipy.stats import kendalltau

    tau = float(kendalltau(scores, truth).statistic)
    rng = np.random.default_rng(seed)
    x, y, taus = np.array(scores), np.array(truth), []
    for _ in range(resamples):
        pick = rng.integers(0, len(x), len(x))
        if len(set(pick)) > 2:
            value = kendalltau(x[pick], y[pick]).statistic
            if np.isfinite(value):
                taus.append(value)
    low, high = np.percentile(taus, [2.5, 97.5]) if taus else (float("nan"),) * 2
    return {"tau": round(tau, 4), "ci95": [round(float(low), 4), round(float(high), 4)]}


def snr_summary(grads, a_steps: int) -> dict:
    """Median and top-decile SNR (|mean| / std over batches) of per-batch gradients [batches,
    entries] and the A-steps a z = 3 decision needs at each (9 / SNR²: the sum of n steps is
    SNR·√n standard deviations from zero); `a_steps` is what the search made."""
    import numpy as np

    mean, std = grads.mean(axis=0), grads.std(axis=0, ddof=1)
    snr = np.abs(mean) / np.maximum(std, 1e-20)
    median, top = float(np.median(snr)), float(np.percentile(snr, 90))
    return {"entries": int(snr.size), "snr_median": round(median, 4),
            "snr_p90": round(top, 4),
            "a_steps_for_z3_median": round(9 / median ** 2) if median > 0 else None,
            "a_steps_for_z3_p90": round(9 / top ** 2) if top > 0 else None,
            "z_reached_by_search_median": round(median * a_steps ** 0.5, 2),
            "z_reached_by_search_p90": round(top * a_steps ** 0.5, 2)}
