"""Judges of the hidden tests for 00_course_tour (instructor material: never released to students).

Run in the trusted grader only, on the data ``probes.py`` exported from the student's kernel: class means are compared
with the reference results (the solution's output on the same inputs); nearest-prototype predictions must agree with
the reference's on 99% of the images.
"""

from __future__ import annotations

import torch

from instructor.grading.judge import Fail, criteria, get_value, match_mistake, require, require_all_close, require_close
from instructor.grading.spec import probes_beside

probes = probes_beside(__file__)

DIAGNOSES = (  # the typical mistakes these judges name (Verdict.diagnosis), counted by the class report
    "divides_by_total_count",
    "input_modified_in_place",
    "argmax_for_argmin",
)



@criteria("class_means")
def judge_class_means_visible(got: dict, want: dict) -> str:
    require_close("means", got, want["means"], rtol=1e-5, atol=1e-6, hidden=False,
                  hint="the mean of class k divides by the number of images of class k.")
    return "right on the visible example"


def _hidden_labels() -> torch.Tensor:
    gen = torch.Generator().manual_seed(20261127)
    return torch.tensor([0] * 7 + [1] * 2 + [2] * 11 + [4] * 5)[torch.randperm(25, generator=gen)]


@criteria("class_means")
def judge_class_means_hidden(got: dict, want: dict) -> str:
    small = get_value(got, "small_classes", tuple(want["small_classes"].shape))
    counts = torch.bincount(_hidden_labels(), minlength=5)[[0, 1, 2, 4]].double()
    mistake = match_mistake(small, {"divides_by_total_count": (
        "classes have different sizes: divide the sum of class k by the number of images of class k.",
        want["small_classes"].double() * counts[:, None, None] / 25)}, rtol=1e-4)
    if mistake:
        raise Fail("small_classes: wrong values", mistake[1], mistake[0])
    require_all_close(got, {k: want[k] for k in ("small_classes", "mnist")}, rtol=1e-4, atol=1e-6, hidden=True, hints={
        "small_classes": "classes have different sizes, and a class can be empty; images may be float64.",
        "mnist": "average over the images of each class, per pixel."})
    gen = torch.Generator().manual_seed(20261127)
    torch.randperm(25, generator=gen)
    images = torch.randn(25, 1, 28, 28, generator=gen, dtype=torch.float64) * 3 + 1  # the probe's inputs, redrawn
    require(torch.equal(get_value(got, "images_after", tuple(images.shape)), images),
            "class_means changed its input images in place.", "work on a copy.", "input_modified_in_place")
    return "right on the hidden inputs"


def _agreement(got: dict, want: dict, name: str, label: str) -> float:
    predictions = get_value(got, name, tuple(want[name].shape), f"{label}'s predictions")
    fraction = (predictions.to(want[name].dtype) == want[name]).double().mean().item()
    if fraction < 0.99:
        flipped = fraction < 0.2
        raise Fail(f"{label}: agrees with the reference on only {fraction:.1%} of the inputs (at least 99% needed)",
                   "the nearest mean has the smallest distance: argmin, not argmax." if flipped else "",
                   "argmax_for_argmin" if flipped else "")
    return fraction


@criteria("nearest_mean_predict")
def judge_nearest_mean(got: dict, want: dict) -> str:
    test = _agreement(got, want, "test", "on the test set")
    noisy = _agreement(got, want, "noisy_means", "with other means")
    return f"agrees with the reference on {test:.1%} of the test set and {noisy:.1%} with other means"


JUDGES = {
    "ex0_1_visible": judge_class_means_visible,
    "ex0_1_hidden": judge_class_means_hidden,
    "ex0_2_extra": judge_nearest_mean,
}
