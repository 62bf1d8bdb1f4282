"""The six strategies' decisions over the trials' results (pure).

:func:`analyse` takes the status rows :func:`sailvl.experiment.trials.decide` built
(one per trial: phase, scores, ``overall`` = the selection metric, tokens) and the raw
results, and returns ``(decision, best, conditions, error)``. It runs on every
reconcile, so the decision grows while trials finish (an incremental walk, a partial
ranking); ``final`` says every trial is done. ``error`` is set only when the strategy
cannot decide at all (e.g. composition's base failed); the Experiment then fails with
that message. Scores are on the 0-100 scale; deltas are in points.

- quickQuality: a ranking per subset size (highest first; ties share a mean rank), the
  final ranking at the largest size, and between each smaller size and the largest the
  Kendall tau-b and Spearman rho over the candidates scored at both. A tau below
  ``minKendallTau`` is condition ``RankAgreement=False`` (reason ``RankDisagreement``),
  the paper's stated assumption (Figure 4) failing, which the operator also posts as a
  Warning event; so is a size at which every candidate scored the same (reason
  ``RankUndetermined``: the subset cannot rank them).
- composition: the effect of each reduction (score - base); a group whose reduction
  did not hurt (effect >= -tolerance) keeps the reduced share in the proposed mixture,
  given as a ready ``data:`` list.
- incremental: candidates in order; accepted when score >= best - tolerance, where
  best is the highest score of the base and the accepted candidates so far (so a run of
  slightly worse candidates cannot drift the collection down). A failed trial is a
  rejection. The curated collection is the base plus the accepted, as a ``data:`` list.
- checkpointScaling: score against tokens per benchmark, per category and for the
  selection metric, each with the log-linear fit ``a + b * log10(tokens)`` and R^2.
- correlation: pretrained score against post-SFT score per checkpoint; Pearson rho,
  R^2 (= rho^2) and the least-squares line.
- compare: each plan's curve (samples seen at the end of each stage, and with
  ``evalEvery`` at each evaluated export inside a stage, against that eval's score),
  the final scores, the best plan.
"""

from __future__ import annotations

from typing import Any

from sailvl.api import constants as c
from sailvl.api.benchmarks import aggregate
from sailvl.api.experiment import ExperimentSpec
from sailvl.eval.scaling import fit_log_linear, pearson

from .stats import fit_line, kendall_tau, ranks, spearman
from .trials import Results, Trial, curve_samples, last_eval, metric_value

COND_RANK_AGREEMENT = "RankAgreement"
REASON_RANK_DISAGREEMENT = "RankDisagreement"
REASON_RANK_UNDETERMINED = "RankUndetermined"

Analysis = tuple[dict[str, Any], str | None, list[tuple[str, str, str, str]], str | None]


def analyse(
    exp: ExperimentSpec,
    every: list[Trial],
    rows: list[dict[str, Any]],
    results: Results,
    final: bool,
) -> Analysis:
    s = exp.strategy
    by = {r["name"]: r for r in rows}
    if s.quick_quality is not None:
        return quick_quality(exp, every, by, final)
    if s.composition is not None:
        return composition(exp, by, final)
    if s.incremental is not None:
        return incremental(exp, results, final)
    if s.checkpoint_scaling is not None:
        return checkpoint_scaling(exp, every, by, final)
    if s.correlation is not None:
        return correlation(exp, every, by, final)
    return compare(exp, every, results, final)


def _value(row: dict[str, Any] | None) -> float | None:
    if row is None or row.get("phase") != c.SUCCEEDED:
        return None
    v = row.get("overall")
    return None if v is None else float(v)


def _r(x: float) -> float:
    return round(x, 4)


# -- quickQuality ----------------------------------------------------------------------


def quick_quality(
    exp: ExperimentSpec, every: list[Trial], by: dict[str, dict[str, Any]], final: bool
) -> Analysis:
    qq = exp.strategy.quick_quality
    assert qq is not None
    sizes = sorted(qq.samples)
    scored: dict[int, dict[str, float]] = {n: {} for n in sizes}
    for t in every:
        v = _value(by.get(t.name))
        if v is not None:
            scored[int(t.variant["samples"])][str(t.variant["candidate"])] = v
    rankings = {}
    for n, vals in scored.items():
        names = sorted(vals, key=lambda k: (-vals[k], k))
        rk = ranks([vals[k] for k in names])
        rankings[str(n)] = [
            {"candidate": k, "score": _r(vals[k]), "rank": r}
            for k, r in zip(names, rk, strict=True)
        ]
    largest = sizes[-1]
    top = scored[largest]
    order = sorted(top, key=lambda k: (-top[k], k))
    decision: dict[str, Any] = {
        "rankings": rankings,
        "ranking": order,
        "metric": exp.selection.metric,
    }
    conditions = []
    agreement = []
    for n in sizes[:-1]:
        common = sorted(set(scored[n]) & set(top))
        entry: dict[str, Any] = {"samples": [n, largest], "candidates": len(common)}
        try:
            xs, ys = [scored[n][k] for k in common], [top[k] for k in common]
            entry["kendallTau"] = _r(kendall_tau(xs, ys))
            entry["spearman"] = _r(spearman(xs, ys))
        except ValueError:
            entry["kendallTau"] = entry["spearman"] = None
        agreement.append(entry)
    for n in sizes:
        at = list(scored[n].values())
        if len(at) >= 2 and len(set(at)) == 1:
            conditions.append(
                (
                    COND_RANK_AGREEMENT,
                    "False",
                    REASON_RANK_UNDETERMINED,
                    f"every candidate scored {at[0]:.2f} at {n} samples: the subset "
                    "cannot rank them (train longer or evaluate on more rows)",
                )
            )
            break
    if agreement:
        decision["agreement"] = agreement
        bad = [
            a
            for a in agreement
            if a["kendallTau"] is not None and a["kendallTau"] < qq.min_kendall_tau
        ]
        if bad:
            a = bad[0]
            small = sorted(scored[a["samples"][0]], key=lambda k: -scored[a["samples"][0]][k])
            conditions.append(
                (
                    COND_RANK_AGREEMENT,
                    "False",
                    REASON_RANK_DISAGREEMENT,
                    f"the ranking at {a['samples'][0]} samples ({' > '.join(small)}) disagrees "
                    f"with the ranking at {largest} ({' > '.join(order)}): Kendall tau "
                    f"{a['kendallTau']:.2f} < {qq.min_kendall_tau:g}; the subset may be too "
                    "small to judge these collections",
                )
            )
        elif all(a["kendallTau"] is not None for a in agreement) and final and not conditions:
            taus = ", ".join(f"{a['kendallTau']:.2f}" for a in agreement)
            conditions.append(
                (COND_RANK_AGREEMENT, "True", COND_RANK_AGREEMENT, f"Kendall tau {taus}")
            )
    best = order[0] if order else None
    if best is None or len(order) < 2:
        return (
            decision,
            best,
            conditions,
            (f"fewer than two candidates were scored at {largest} samples" if final else None),
        )
    tied = [k for k in order[1:] if top[k] == top[best]]
    decision["summary"] = (
        f"best {best} ({top[best]:.2f} {exp.selection.metric} at {largest} samples"
        f"{', tied with ' + ', '.join(tied) if tied else ''}); ranking {' > '.join(order)}"
    )
    return decision, best, conditions, None


# -- composition -----------------------------------------------------------------------


def composition(exp: ExperimentSpec, by: dict[str, dict[str, Any]], final: bool) -> Analysis:
    comp = exp.strategy.composition
    assert comp is not None
    base = _value(by.get("base"))
    decision: dict[str, Any] = {"metric": exp.selection.metric, "base": base}
    if base is None:
        failed = by.get("base", {}).get("phase") in (c.FAILED, "Skipped")
        err = "the base trial did not succeed: no effect can be measured" if failed else None
        return decision, None, [], err
    effects: dict[str, Any] = {}
    reduced = []
    for g in comp.groups:
        v = _value(by.get(f"half-{g.name}"))
        if v is None:
            effects[g.name] = None
            continue
        effects[g.name] = _r(v - base)
        if v - base >= -comp.tolerance:
            reduced.append(g.name)
    data = []
    for g in comp.groups:
        factor = comp.factor if g.name in reduced else 1.0
        for src in g.data:
            d = src.to_dict()
            d["weight"] = src.weight * factor
            data.append(d)
    decision.update({"effects": effects, "reduce": reduced, "factor": comp.factor, "data": data})
    keep = [g.name for g in comp.groups if g.name not in reduced]
    decision["summary"] = (
        f"reduce {', '.join(reduced) or 'no group'} to x{comp.factor:g}; "
        f"keep {', '.join(keep) or 'no group'} (base {base:.2f})"
    )
    candidates = {"base": base} | {
        f"half-{g}": base + e for g, e in effects.items() if e is not None
    }
    best = max(candidates, key=lambda k: candidates[k])
    return decision, best, [], None


# -- incremental -----------------------------------------------------------------------


def _outcome(
    exp: ExperimentSpec, trial: Trial, states: dict[str, Any]
) -> tuple[str | None, float | None]:
    """(Succeeded / Failed / None while unfinished, selection value) of a trial."""
    if any(s.phase == c.FAILED for s in states.values()):
        return c.FAILED, None
    ev = last_eval(exp, trial, states)
    if ev is None or ev.phase != c.SUCCEEDED:
        return None, None
    return c.SUCCEEDED, metric_value(ev.scores, exp.selection.metric)


def incremental_walk(exp: ExperimentSpec, results: Results) -> list[dict[str, Any]]:
    """One entry per finished candidate, in order: score, best before, delta, accepted.
    Stops at the first unfinished candidate (the order is the method)."""
    from .trials import trials

    inc = exp.strategy.incremental
    assert inc is not None
    every = trials(exp)
    phase, best = _outcome(exp, every[0], results.get("base", {}))
    if phase != c.SUCCEEDED or best is None:
        return []
    out = []
    for trial in every[1:]:
        phase, v = _outcome(exp, trial, results.get(trial.name, {}))
        if phase is None:
            break
        entry: dict[str, Any] = {"candidate": trial.variant["candidate"], "trial": trial.name}
        entry["bestBefore"] = _r(best)
        if phase == c.FAILED or v is None:
            entry.update({"score": None, "delta": None, "accepted": False, "why": "trial failed"})
        else:
            ok = v >= best - inc.tolerance
            entry.update({"score": _r(v), "delta": _r(v - best), "accepted": ok})
            best = max(best, v) if ok else best
        out.append(entry)
    return out


def incremental(exp: ExperimentSpec, results: Results, final: bool) -> Analysis:
    from .trials import trials

    inc = exp.strategy.incremental
    assert inc is not None
    base_phase, base = _outcome(exp, trials(exp)[0], results.get("base", {}))
    decision: dict[str, Any] = {"metric": exp.selection.metric, "tolerance": inc.tolerance}
    if base_phase == c.FAILED:
        return decision, None, [], "the base trial failed: no candidate can be judged"
    walk = incremental_walk(exp, results)
    accepted = [e["candidate"] for e in walk if e["accepted"]]
    data = [s.to_dict() for s in inc.base]
    for cand in inc.candidates:
        if cand.name in accepted:
            data += [s.to_dict() for s in cand.data]
    decision.update(
        {
            "base": None if base is None else _r(base),
            "steps": walk,
            "accepted": accepted,
            "rejected": [e["candidate"] for e in walk if not e["accepted"]],
            "data": data,
        }
    )
    scored = [(e["score"], e["trial"]) for e in walk if e["accepted"]]
    best = max(scored)[1] if scored else ("base" if base is not None else None)
    decision["summary"] = (
        f"accepted {', '.join(accepted) or 'none'}; rejected "
        f"{', '.join(decision['rejected']) or 'none'}"
    )
    return decision, best, [], None


# -- checkpointScaling -----------------------------------------------------------------


def checkpoint_scaling(
    exp: ExperimentSpec, every: list[Trial], by: dict[str, dict[str, Any]], final: bool
) -> Analysis:
    series: dict[str, list[tuple[float, float]]] = {}
    for t in every:
        row = by.get(t.name) or {}
        if "tokens" not in t.variant or row.get("phase") != c.SUCCEEDED or not row.get("tokens"):
            continue
        tokens = float(row["tokens"])
        scores = {k: float(v) for k, v in (row.get("scores") or {}).items()}
        for key, v in {**scores, **aggregate(scores)}.items():
            series.setdefault(key, []).append((tokens, v))
        sel = metric_value(scores, exp.selection.metric)
        if sel is not None:
            series.setdefault(exp.selection.metric, [])
            if (tokens, sel) not in series[exp.selection.metric]:
                series[exp.selection.metric].append((tokens, sel))
    fits: dict[str, Any] = {}
    for key, pts in series.items():
        pts.sort()
        if len({x for x, _ in pts}) >= 2:
            f = fit_log_linear([x for x, _ in pts], [y for _, y in pts])
            fits[key] = {"a": _r(f.a), "b": _r(f.b), "r2": _r(f.r2), "n": f.n}
    decision: dict[str, Any] = {
        "metric": exp.selection.metric,
        "points": {k: [[x, _r(y)] for x, y in v] for k, v in sorted(series.items())},
        "fits": fits,
    }
    sel = fits.get(exp.selection.metric)
    if sel is None:
        err = "fewer than two checkpoints were scored: no fit" if final else None
        return decision, None, [], err
    decision["summary"] = (
        f"{exp.selection.metric} = {sel['a']:.2f} + {sel['b']:.2f} * log10(tokens), "
        f"R^2 {sel['r2']:.3f} over {sel['n']} checkpoints"
    )
    pts = series[exp.selection.metric]
    best_tokens = max(pts, key=lambda p: p[1])[0]
    best = next((t.name for t in every if float(t.variant.get("tokens") or 0) == best_tokens), None)
    return decision, best, [], None


# -- correlation -----------------------------------------------------------------------


def correlation(
    exp: ExperimentSpec, every: list[Trial], by: dict[str, dict[str, Any]], final: bool
) -> Analysis:
    pairs = []
    for t in every:
        row = by.get(t.name) or {}
        v, pre = _value(row), row.get("pretrain")
        if v is not None and pre is not None:
            pairs.append((t.name, float(pre), v))
    corr = exp.strategy.correlation
    assert corr is not None
    decision: dict[str, Any] = {
        "pretrainMetric": corr.pretrain_metric,
        "metric": exp.selection.metric,
        "points": [{"checkpoint": n, "pretrain": _r(x), "sft": _r(y)} for n, x, y in pairs],
    }
    best = max(pairs, key=lambda p: p[2])[0] if pairs else None
    if len(pairs) < 3:
        err = f"{len(pairs)} checkpoints have both scores; at least 3 are needed" if final else None
        return decision, best, [], err
    xs, ys = [p[1] for p in pairs], [p[2] for p in pairs]
    try:
        rho = pearson(xs, ys)
        a, b, _ = fit_line(xs, ys)
    except ValueError as err:
        return decision, best, [], (f"no correlation: {err}" if final else None)
    decision.update({"pearson": _r(rho), "r2": _r(rho * rho), "fit": {"a": _r(a), "b": _r(b)}})
    decision["summary"] = (
        f"Pearson rho {rho:.3f}, R^2 {rho * rho:.3f} over {len(pairs)} checkpoints"
    )
    return decision, best, [], None


# -- compare ---------------------------------------------------------------------------


def stage_samples(exp: ExperimentSpec, trial: Trial) -> list[int | None]:
    """Samples each stage of a compare plan trains on (samples rounded up to whole steps,
    or steps x globalBatch; None for a tokens budget)."""
    from .trials import _batch_and_steps, trial_curriculum

    cur = trial_curriculum(exp, trial, {})
    out: list[int | None] = []
    for i in range(len(cur.stages)):
        gb, total = _batch_and_steps(cur, i)
        out.append(total * gb if gb and total else None)
    return out


def compare(exp: ExperimentSpec, every: list[Trial], results: Results, final: bool) -> Analysis:
    curves: dict[str, list[list[float]]] = {}
    finals: dict[str, float] = {}
    for t in every:
        states = results.get(t.name, {})
        xs = curve_samples(exp, t)
        pts = []
        for name, x in xs.items():
            st = states.get(name)
            if x is None or st is None or st.phase != c.SUCCEEDED:
                continue
            v = metric_value(st.scores, exp.selection.metric)
            if v is not None:
                pts.append([float(x), _r(v)])
        pts.sort()
        curves[t.name] = pts
        ev = last_eval(exp, t, states)
        if ev is not None and ev.phase == c.SUCCEEDED:
            v = metric_value(ev.scores, exp.selection.metric)
            if v is not None:
                finals[t.name] = _r(v)
    decision: dict[str, Any] = {"metric": exp.selection.metric, "curves": curves, "final": finals}
    best = max(finals, key=lambda k: finals[k]) if finals else None
    if len(finals) < 2:
        return decision, best, [], ("fewer than two plans finished" if final else None)
    order = sorted(finals, key=lambda k: -finals[k])
    tie = " (a tie at the top)" if finals[order[0]] == finals[order[1]] else ""
    decision["summary"] = "final " + ", ".join(f"{k} {finals[k]:.2f}" for k in order) + tie
    return decision, best, [], None
