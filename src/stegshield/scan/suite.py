"""Which detectors a scan runs, and how their scores are fused into one.

``--detector`` choices:

* ``classical``: WS and SPA (payload estimators of LSB replacement). The group statistic is
  the **smaller** of their two payload estimates (both must agree), which on real images gave
  the best detection rate at a fixed false-positive rate (``docs/SCAN.md``). RS is left out:
  it adds nothing at fixed FPR and breaks down at full embedding; chi-square false-alarms on
  images with smooth histograms. Both are reported with ``all``.
* ``structural``: the learned structural detector of LSB replacement alone (a logistic
  regression over WS's per-pixel terms by local-variance bin and SPA's estimate,
  :mod:`stegshield.analysis.structural.learned`; statistic: log-odds, FPR from its validation
  thresholds, like a learned detector).  No torch.
* ``spam``: SPAM features (Pevný, Bas & Fridrich 2010) + logistic regression, trained against
  LSB matching (:mod:`stegshield.analysis.features.spam`); fused the same way.  No torch.
* ``srm``: a small spatial rich model (Fridrich & Kodovský 2012) + logistic regression, trained
  against content-adaptive embedding (:mod:`stegshield.analysis.features.srm`); same.
* ``srm-lsbm``: the same features and classifier trained against LSB matching; same.
* ``cnn`` / ``cnn-thorough`` / ``pretrained``: the learned detector of that name alone
  (statistic: log-odds); ``cnn-thorough`` is the slower full-resolution model
  (``scan --thorough``).
* ``fused`` / ``fused-thorough``: the CNN (``cnn`` / ``cnn-thorough``) and linear detectors
  summed tile by tile with weights, calibration and thresholds fitted on validation
  (:mod:`stegshield.analysis.fusion`); statistic: the fused log-odds, like a learned detector.
* ``auto``: ``classical``, plus each learned detector listed in :data:`AUTO_LEARNED` that is
  available. The list is empty for now: the shipped CNN is far from its accuracy goals and
  costs ~10x the classical scan time (``BENCHMARKS.md``: 1.6 MP/s against 12.9), so it runs
  only on request (``--detector cnn`` or ``all``) until a model earns its place.
* ``all``: every registered detector except the ``fused`` ones (their members run on their
  own);
  the linear and the learned ones are fused as groups of their own beside ``classical``; RS and
  chi-square are reported, not fused.

Scores come from the same calibration as the verdicts (:mod:`.thresholds`): each group's
statistic is turned into its estimated false-positive rate on clean images, the k groups are
combined by Bonferroni (``P = k * min p_g``) and ``score = F0 / (F0 + P)``, so the score is
monotone in every statistic and 0.5 exactly at the default alert threshold. Each group's score
is the same map of ``k * p_g``, so the fused score is their **maximum** (groups detect
different embeddings, LSB replacement vs. adaptive ±1: an alert from any group is an alert).

Torch is never imported here unless a learned detector is requested, or ``auto``/``all`` finds
one installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis import Calibration, DetectionResult, Detector, available_detectors, get_detector
from ..analysis.photo_calibration import PhotoCalibrationError
from ..errors import StegshieldError
from .choices import DETECTOR_CHOICES
from .thresholds import (
    classical_fpr,
    classical_threshold,
    learned_fpr,
    learned_threshold,
    logit,
    score_of_fpr,
)

__all__ = [
    "CLASSICAL",
    "DETECTOR_CHOICES",
    "FUSED",
    "LEARNED",
    "LINEAR",
    "Analysis",
    "HeatMap",
    "Suite",
    "SuiteError",
    "build_suite",
    "learned_available",
]

CLASSICAL = ("ws", "spa")
LEARNED = ("cnn", "cnn-thorough", "pretrained")
#: Fused like a learned detector (its own group, log-odds statistic), but numpy only.
LINEAR = ("structural", "spam", "srm", "srm-lsbm")
#: A CNN and linear detectors summed per tile: learned detectors, on request only.
FUSED = ("fused", "fused-thorough")
#: Detectors whose thresholds a photograph fit can set (``--calibration``); ``pretrained`` is
#: tiled too, but a Gumbel law does not describe its clean statistics (docs/SCAN.md).
CALIBRATABLE = ("cnn", "cnn-thorough", "fused", "fused-thorough")
#: Images above this many pixels are analysed in blocks (bounded memory for any size).
BLOCK_PIXELS = 4096 * 4096
#: Block side (a multiple of every detector's tile size, so tile maps stitch exactly).
BLOCK_SIDE = 2048


#: Score map of per-tile payload estimates (64x64 tiles are noisy: on clean photos the 95th
#: percentile of WS tile estimates is ~0.14 bpp, so 0.5 sits at 0.15 and 0.95 at 0.30).
TILE_CALIBRATION = Calibration.from_points(0.15, 0.30)


class SuiteError(StegshieldError):
    """A requested detector is not available; the message is one line for the user."""


@dataclass
class HeatMap:
    """Per-tile suspicion in [0, 1] (``nan`` where a tile cannot be judged)."""

    source: str
    tile: int
    values: np.ndarray

    def to_json(self) -> dict[str, Any]:
        """Rows of rounded floats (``None`` for nan)."""
        rows = [[None if not math.isfinite(v) else round(float(v), 3) for v in row]
                for row in self.values]
        return {"source": self.source, "tile": self.tile, "rows": len(rows),
                "cols": len(rows[0]) if rows else 0, "values": rows}


@dataclass
class Analysis:
    """What the suite says about one image."""

    score: float
    """``score_of_fpr(fpr)``: 0.5 at the default alert threshold, 0 when nothing was judged."""
    payload_bpp: float | None
    detectors: dict[str, float]
    groups: dict[str, float]
    """Score of each fused group (the fused score is their maximum)."""
    stats: dict[str, float]
    """Statistic of each fused group (``nan`` = no judgement)."""
    heatmap: HeatMap | None = None
    fprs: dict[str, float] = field(default_factory=dict)
    """Estimated false-positive rate of each group's statistic on clean images."""
    fpr: float = math.nan
    """Family-wise estimate ``min(1, k * min(fprs))`` (``nan`` = no judgement)."""


#: The package that registers each learned detector.
_LEARNED_MODULES = {"cnn": "cnn", "cnn-thorough": "cnn", "pretrained": "pretrained",
                    "fused": "fusion", "fused-thorough": "fusion"}


def _learned_module(name: str) -> str:
    return f"stegshield.analysis.{_LEARNED_MODULES[name]}"


def learned_available(name: str) -> bool:
    """Whether the learned detector ``name`` is (or can be) registered, without importing torch
    unless its module and torch are both installed."""
    if name in available_detectors():
        return True
    try:
        if importlib.util.find_spec(_learned_module(name)) is None:
            return False
        if importlib.util.find_spec("torch") is None:
            return False
    except (ImportError, ValueError):
        return False
    try:
        importlib.import_module(_learned_module(name))  # registers itself
    except Exception:
        return False
    return name in available_detectors()


def _tile_scores(name: str, det: Detector, res: DetectionResult) -> np.ndarray | None:
    """The detector's tile map as per-tile suspicion in [0, 1]."""
    tm = res.tile_map
    if tm is None:
        return None
    tm = np.asarray(tm, dtype=np.float64)
    if tm.ndim != 2 or tm.size == 0:
        return None
    if name == "chi_square":  # p-values: high = looks embedded
        return tm
    cal: Callable[[float], float] | None = getattr(det, "calibration", None)
    if name in CLASSICAL or name == "rs":
        cal = TILE_CALIBRATION
    finite = np.isfinite(tm)
    in_unit = bool(finite.any()) and tm[finite].min() >= 0 and tm[finite].max() <= 1
    if cal is None or (name in LEARNED and in_unit):
        return np.clip(tm, 0.0, 1.0)
    out = np.full(tm.shape, np.nan)
    out[finite] = [cal(float(v)) for v in tm[finite]]
    return out


#: Per detector: (score, payload_bpp, tile scores, tile size, raw statistic).
_Res = tuple[float, float | None, np.ndarray | None, int, float]


@dataclass
class _Member:
    name: str
    detector: Detector
    group: str  # "classical", "learned" or "info"


@dataclass
class Suite:
    """A set of detectors and the fusion rule; build it with :func:`build_suite`."""

    mode: str
    members: list[_Member] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    @property
    def groups(self) -> list[str]:
        """Fused groups, in a stable order (``info`` members are never fused)."""
        out: list[str] = []
        for m in self.members:
            g = m.group if m.group != "learned" else m.name
            if m.group != "info" and g not in out:
                out.append(g)
        return out

    @property
    def min_side(self) -> int:
        """Smallest image side every member can judge (``min_judged_side``; 0 if none set)."""
        return max((int(getattr(m.detector, "min_judged_side", 0) or 0) for m in self.members
                    if m.group != "info"), default=0)

    def analyse(self, pixels: np.ndarray) -> Analysis:
        """Run every member on ``pixels`` (in blocks when large) and fuse the scores."""
        results = self._run(pixels)
        scores = {name: float(r[0]) for name, r in results.items()}
        stats: dict[str, float] = {}
        fprs: dict[str, float] = {}
        payload: float | None = None
        classical = [m.name for m in self.members if m.group == "classical"]
        if classical:
            raws = [results[n][4] for n in classical]
            finite = [r for r in raws if math.isfinite(r)]
            stat = min(finite) if finite else math.nan
            stats["classical"] = stat
            fprs["classical"] = classical_fpr(stat)
            payload = float(np.clip(stat, 0.0, 1.0)) if finite else None
        for m in self.members:
            if m.group == "learned":
                if not math.isfinite(results[m.name][4]):  # e.g. too small to judge
                    stats[m.name] = fprs[m.name] = math.nan
                    continue
                stats[m.name] = logit(scores[m.name])
                fprs[m.name] = learned_fpr(m.detector, scores[m.name])
                if payload is None and results[m.name][1] is not None:
                    payload = results[m.name][1]
        k = max(1, len(fprs))
        # min(1.0, nan) is 1.0 in Python: a group that judged nothing keeps its nan (score 0)
        group_scores = {g: score_of_fpr(p if math.isnan(p) else min(1.0, k * p))
                        for g, p in fprs.items()}
        judged = [p for p in fprs.values() if not math.isnan(p)]
        fpr = min(1.0, k * min(judged)) if judged else math.nan
        heat = self._heatmap(results, scores)
        return Analysis(score=score_of_fpr(fpr), payload_bpp=payload, detectors=scores,
                        groups=group_scores, stats=stats, heatmap=heat, fprs=fprs, fpr=fpr)

    def stat_at_fpr(self, group: str, fpr: float) -> float:
        """The statistic threshold of ``group`` for a per-group false-positive rate."""
        if group == "classical":
            return classical_threshold(fpr)
        det = next(m.detector for m in self.members if m.name == group)
        return logit(learned_threshold(det, fpr))

    def _heatmap(self, results: dict[str, _Res],
                 scores: dict[str, float]) -> HeatMap | None:
        ranked = sorted((m for m in self.members if results[m.name][2] is not None),
                        key=lambda m: (m.group == "info", -scores[m.name]))
        if not ranked:
            return None
        best = ranked[0]
        _, _, values, tile, _ = results[best.name]
        assert values is not None
        return HeatMap(source=best.name, tile=tile, values=values)

    def _run(self, pixels: np.ndarray
             ) -> dict[str, _Res]:
        h, w = pixels.shape[:2]
        if h * w <= BLOCK_PIXELS:
            out = {}
            for m in self.members:
                res = m.detector.detect(pixels)
                out[m.name] = (float(res.score), res.payload_bpp,
                               _tile_scores(m.name, m.detector, res),
                               int(getattr(m.detector, "tile", 0) or 0), float(res.raw))
            return out
        return self._run_blocks(pixels)

    def _run_blocks(self, pixels: np.ndarray
                    ) -> dict[str, _Res]:
        """Pixel-weighted combination of per-block results; tile maps are stitched."""
        h, w = pixels.shape[:2]
        s = BLOCK_SIDE
        out = {}
        for m in self.members:
            tile = int(getattr(m.detector, "tile", 0) or 0)
            cal = getattr(m.detector, "calibration", None)
            raws, scores, pays, weights, counts = [], [], [], [], []
            grid: list[list[np.ndarray | None]] = []
            for y0, y1 in _block_edges(h, s):
                row: list[np.ndarray | None] = []
                for x0, x1 in _block_edges(w, s):
                    block = pixels[y0:y1, x0:x1]
                    res = m.detector.detect(block)
                    wgt = float(block.shape[0] * block.shape[1])
                    weights.append(wgt)
                    raws.append(float(res.raw))
                    scores.append(float(res.score))
                    pays.append(np.nan if res.payload_bpp is None else float(res.payload_bpp))
                    row.append(_tile_scores(m.name, m.detector, res))
                    tm = res.tile_map
                    counts.append(0 if tm is None else int(np.isfinite(tm).sum())
                                  * (len(res.channels) if res.channels else 1))
                grid.append(row)
            wts, raw_a = np.asarray(weights), np.asarray(raws)
            ok = np.isfinite(raw_a)
            raw = float(np.average(raw_a[ok], weights=wts[ok])) if ok.any() else math.nan
            slope = getattr(m.detector, "tail_slope", None)
            tiled = slope is not None and bool((ok & (np.asarray(counts) > 0)).any())
            if tiled:
                # a tiled detector's statistic is the largest tile minus ln(n)/a: the blocks
                # (whole tiles, edge strips merged as the whole image's tiling merges them)
                # combine exactly into the statistic of the image scanned at once, which its
                # thresholds describe
                from ..analysis.cnn.calibration import combine_blocks

                raw = combine_blocks(raw_a, np.asarray(counts), slope)
            # payload estimators and the linear detectors average per-pixel features, so the
            # whole image's statistic is the pixel-weighted mean of the blocks'
            if cal is not None and ok.any() and (tiled or m.group != "learned"
                                                 or m.name in LINEAR):
                score = float(cal(raw))
            else:
                score = float(np.average(np.asarray(scores), weights=wts))
            pay_a = np.asarray(pays)
            okp = np.isfinite(pay_a)
            payload = (float(np.clip(np.average(pay_a[okp], weights=wts[okp]), 0, 1))
                       if okp.any() else None)
            stitched = None
            if tile and all(c is not None for r in grid for c in r):
                stitched = np.vstack([np.hstack([c for c in r if c is not None]) for r in grid])
            out[m.name] = (score, payload, stitched, tile, raw)
        return out


#: A last block thinner than this joins the one before it (as the tiling of a whole image
#: merges an edge strip under half a 256-px tile into the last tile).
MIN_BLOCK_EDGE = 128


def _block_edges(n: int, side: int) -> list[tuple[int, int]]:
    """(start, stop) of the blocks along an axis of ``n`` pixels: ``side`` each, a last strip
    under :data:`MIN_BLOCK_EDGE` merged into the block before it."""
    starts = list(range(0, n, side))
    if len(starts) > 1 and n - starts[-1] < MIN_BLOCK_EDGE:
        starts.pop()
    return [(a, b) for a, b in zip(starts, [*starts[1:], n], strict=True)]


def _make(name: str, group: str, **kwargs: Any) -> _Member:
    if name not in available_detectors():
        raise SuiteError(f"detector {name!r} is not available")
    return _Member(name=name, detector=get_detector(name, **kwargs), group=group)


def _learned(name: str, **kwargs: Any) -> _Member:
    if not learned_available(name):
        raise SuiteError(f"the {name} detector is not installed (it needs torch and its "
                         "weights); use --detector classical")
    try:
        return _make(name, "learned", **kwargs)
    except SuiteError:
        raise
    except Exception as exc:
        if isinstance(exc, PhotoCalibrationError) and "photo_calibration" in kwargs:
            raise SuiteError(f"--calibration {exc}") from exc  # the user's file is wrong
        raise SuiteError(f"the {name} detector could not be loaded: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                         ) from exc


def _linear(name: str) -> _Member:
    try:
        return _make(name, "learned")
    except SuiteError:
        raise
    except Exception as exc:  # weights missing, unreadable or from another feature version
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SuiteError(f"the {name} detector could not be loaded: {msg}") from exc


#: Learned detectors that ``--detector auto`` fuses with the classical group (see above).
AUTO_LEARNED: set[str] = set()


def build_suite(spec: str = "auto", calibration: str | Path | None = None) -> Suite:
    """Build the detector suite for a ``--detector`` choice, or raise :class:`SuiteError`.

    ``calibration``: a photograph calibration file (``python -m stegshield.scan.calibrate
    --fit``) that replaces the shipped thresholds of a single detector of
    :data:`CALIBRATABLE`."""
    if spec not in DETECTOR_CHOICES:
        raise SuiteError(f"unknown detector choice {spec!r}; choose from "
                         f"{', '.join(DETECTOR_CHOICES)}")
    if calibration is not None and spec not in CALIBRATABLE:
        raise SuiteError(f"--calibration sets the thresholds of one tiled learned detector "
                         f"({', '.join(CALIBRATABLE)}), not of {spec!r}")
    classical = [_make(n, "classical") for n in CLASSICAL]
    if spec == "classical":
        return Suite(mode="classical", members=classical)
    if spec in LEARNED or spec in FUSED:
        kwargs = {} if calibration is None else {"photo_calibration": calibration}
        return Suite(mode=spec, members=[_learned(spec, **kwargs)])
    if spec in LINEAR:
        return Suite(mode=spec, members=[_linear(spec)])
    if spec == "auto":
        notes: list[str] = []
        if "cnn" in AUTO_LEARNED and learned_available("cnn"):
            try:
                return Suite(mode="cnn+classical", members=[_learned("cnn"), *classical])
            except SuiteError as exc:
                notes.append(f"{exc}; scanning with the classical detectors only")
        return Suite(mode="classical", members=classical, notes=notes)
    # all
    members = list(classical)
    notes = []
    for name in LINEAR:
        try:
            members.insert(0, _linear(name))
        except SuiteError as exc:
            notes.append(str(exc))
    for name in LEARNED:
        if learned_available(name):
            try:
                members.insert(0, _learned(name))
            except SuiteError as exc:
                notes.append(str(exc))
    known = set(CLASSICAL) | set(LEARNED) | set(LINEAR) | set(FUSED)
    for name in ("rs", "chi_square"):  # reported first among the extras
        if name in available_detectors():
            members.append(_make(name, "info"))
            known.add(name)
    for name in available_detectors():
        if name not in known:
            members.append(_make(name, "info"))
    mode = "+".join([m.name for m in members if m.group == "learned"] + ["classical"])
    return Suite(mode=f"all:{mode}", members=members, notes=notes)
