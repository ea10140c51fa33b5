"""The class report's figures, drawn with matplotlib and embedded as base64 PNG (the page needs no other file).

Colours are the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies); extra credit is also
hatched, so no meaning rests on colour alone. Every figure has a title, labelled axes and an alt text built from its
numbers. No student name ever appears in a figure.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the headless backend
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from instructor.classreport.stats import OTHER, Distribution, Mistake, Timing  # noqa: E402

BLUE, ORANGE, GREEN, VERMILLION, SKY, PURPLE, YELLOW, GREY = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#7F7F7F")
STATUS_COLOURS = {"ok": GREEN, "timeout": ORANGE, "memory": PURPLE, "crashed": VERMILLION, "invalid": SKY,
                  "missing": GREY}
PANEL = (3.0, 2.2)  # inches per small-multiple panel
DPI = 100
MAX_MISTAKES = 15  # bars in the class-wide mistakes figure
NOT_ATTEMPTED = {"unanswered", "upstream_failed"}  # diagnoses that are no misconception
MISTAKE_STYLE = {"named mistake": (VERMILLION, ""), "not attempted": (SKY, ".."), "no diagnosis": (GREY, "//")}


@dataclass(frozen=True)
class Embedded:
    """A figure ready for the page: an <img> data URI and its alt text."""

    title: str
    data_uri: str
    alt: str


def _embed(fig: Figure, title: str, alt: str) -> Embedded:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})  # constrained layout: no "tight" pass
    plt.close(fig)
    return Embedded(title, "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), alt)


def _step(d: Distribution) -> float:
    """The bar width for a score axis: 1 point, or 0.5 when the maximum or a score is not a whole number."""
    return 1.0 if all(float(v).is_integer() for v in [d.maximum, *d.scores]) else 0.5


def bar_counts(d: Distribution) -> tuple[list[float], list[int]]:
    """The score axis (0 to the maximum by `_step`) and how many scores fall nearest each value (clipped)."""
    step = _step(d)
    values = [i * step for i in range(int(math.floor(d.maximum / step + 0.5)) + 1)]
    counts = [0] * len(values)
    for score in d.scores:
        counts[min(len(values) - 1, max(0, int(math.floor(score / step + 0.5))))] += 1
    return values, counts


def _histogram(ax, d: Distribution) -> None:
    step = _step(d)
    values, counts = bar_counts(d)
    ax.bar(values, counts, width=step * 0.85, color=ORANGE if d.extra_credit else BLUE,
           hatch="//" if d.extra_credit else None, edgecolor="black", linewidth=0.6)
    ax.set_title(f"{d.label} (of {d.maximum:g})", fontsize=10)
    ax.set_xlabel("points")
    ax.set_ylabel("students")
    ax.set_xlim(-step, d.maximum + step)
    ax.yaxis.get_major_locator().set_params(integer=True)
    if len(values) > 12:
        ax.xaxis.get_major_locator().set_params(integer=True)
    else:
        ax.set_xticks(values)
    ax.spines[["top", "right"]].set_visible(False)


def _describe(d: Distribution) -> str:
    return (f"{d.label} (of {d.maximum:g}): {len(d.scores)} scores, mean {d.mean:.1f}, median {d.median:g}, "
            f"{d.full_marks} at full marks")


def score_histograms(distributions: list[Distribution], title: str) -> Embedded | None:
    """Small multiples, one histogram per distribution; None when there is none."""
    if not distributions:
        return None
    cols = min(4, len(distributions))
    rows = math.ceil(len(distributions) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(PANEL[0] * cols, PANEL[1] * rows), squeeze=False,
                             layout="constrained")
    for ax, d in zip(axes.flat, distributions, strict=False):
        _histogram(ax, d)
    for ax in list(axes.flat)[len(distributions):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=12)
    alt = f"{title}. Bar charts of how many students got each score. " + "; ".join(_describe(d) for d in distributions)
    return _embed(fig, title, alt + ".")


def _kind(diagnosis: str) -> str:
    if diagnosis == OTHER:
        return "no diagnosis"
    return "not attempted" if diagnosis in NOT_ATTEMPTED else "named mistake"


def mistakes_chart(ranked: dict[str, list[Mistake]], students: int) -> Embedded | None:
    """The class's most common mistakes (all exercises), one horizontal bar each; None when nobody failed."""
    everything = sorted((m for found in ranked.values() for m in found),
                        key=lambda m: (-m.students, m.diagnosis == OTHER, m.exercise, m.diagnosis))[:MAX_MISTAKES]
    if not everything:
        return None
    shown = everything[::-1]
    kinds = [_kind(m.diagnosis) for m in shown]
    fig, ax = plt.subplots(figsize=(7.5, 0.35 * len(everything) + 1.5), layout="constrained")
    bars = ax.barh([f"{m.exercise}: {m.diagnosis}" for m in shown], [m.students for m in shown],
                   color=[MISTAKE_STYLE[k][0] for k in kinds], hatch=[MISTAKE_STYLE[k][1] for k in kinds],
                   edgecolor="black", linewidth=0.6)
    ax.bar_label(bars, padding=3)
    counts = [m.students for m in shown]
    handles = [Patch(facecolor=c, hatch=h, edgecolor="black", label=k) for k, (c, h) in MISTAKE_STYLE.items()
               if k in kinds]
    ax.legend(handles=handles, loc="lower right", fontsize=8, frameon=False)
    ax.set_xlabel(f"students (of {students})")
    ax.set_title("Most common mistakes (exercise: diagnosis)", fontsize=10)
    ax.set_xlim(0, max(counts) * 1.15 + 0.5)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.spines[["top", "right"]].set_visible(False)
    alt = "Horizontal bar chart of the most common mistakes: " + "; ".join(
        f"exercise {m.exercise}, {m.diagnosis}: {m.students} students" for m in everything)
    return _embed(fig, "Most common mistakes", alt + ".")


def status_chart(counts: dict[str, int], timing: Timing) -> Embedded:
    """Two panels: students per status, and a histogram of grading time per submission."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 2.8), layout="constrained")
    names = list(counts)[::-1]
    bars = left.barh(names, [counts[n] for n in names], color=[STATUS_COLOURS.get(n, GREY) for n in names],
                     edgecolor="black", linewidth=0.6)
    left.bar_label(bars, padding=3)
    left.set_xlabel("students")
    left.set_title("Status of each submission", fontsize=10)
    left.set_xlim(0, max(counts.values(), default=0) * 1.2 + 0.5)
    left.xaxis.get_major_locator().set_params(integer=True)
    if timing.seconds:
        right.hist(timing.seconds, bins=min(20, max(5, len(timing.seconds) // 2)), color=SKY, edgecolor="black",
                   linewidth=0.6)
    right.set_xlabel("seconds per submission")
    right.set_ylabel("submissions")
    right.set_title("Grading time", fontsize=10)
    right.yaxis.get_major_locator().set_params(integer=True)
    for ax in (left, right):
        ax.spines[["top", "right"]].set_visible(False)
    alt = ("Bar chart of submissions per status: " + ", ".join(f"{n} {c}" for n, c in counts.items())
           + f". Histogram of grading time: {len(timing.seconds)} submissions ran, median {timing.median:.1f} s, "
           f"longest {timing.longest:.1f} s, {timing.total:.0f} s in all.")
    return _embed(fig, "Statuses and grading time", alt)
