"""Probes of the hidden tests for 00_course_tour (instructor material: never released to students).

The only hidden-test code that enters the student's kernel (`instructor.grading.runner`): each probe builds inputs,
calls the student's functions and returns plain tensors. Nothing here computes an answer: no reference
implementation, no expected value, no table of typical wrong answers; those live in ``judges.py``, which only the
trusted grader imports (and which rebuilds the inputs with the builders below).
"""

from __future__ import annotations

import torch


def _visible_example() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The example of the visible check 0.1: class means known by construction."""
    gen = torch.Generator().manual_seed(1)
    base = torch.rand(3, 28, 28, generator=gen) * 2 - 0.5
    images, labels = [], []
    for k in range(3):
        deviations = torch.randn(2 + k, 28, 28, generator=gen)
        deviations -= deviations.mean(0)
        images.append(base[k] + deviations)
        labels += [k] * (2 + k)
    order = torch.randperm(len(labels), generator=gen)
    return torch.cat(images)[order].unsqueeze(1), torch.tensor(labels)[order], base


def probe_class_means_visible(ns: dict) -> dict:
    images, labels, _ = _visible_example()
    return {"means": ns["class_means"](images, labels, num_classes=3)}


def probe_class_means_hidden(ns: dict) -> dict:
    """Unseen inputs: 5 classes of unequal size (class 3 empty), float64, plus the real training set."""
    from utils import data

    gen = torch.Generator().manual_seed(20261127)
    labels = torch.tensor([0] * 7 + [1] * 2 + [2] * 11 + [4] * 5)[torch.randperm(25, generator=gen)]
    images = torch.randn(25, 1, 28, 28, generator=gen, dtype=torch.float64) * 3 + 1
    small = ns["class_means"](images, labels, num_classes=5)
    x_train, y_train = data.load_mnist(split="train")
    # the inputs after the call: the judge compares them with its own copy (changed in place?)
    return {"small_classes": small[[0, 1, 2, 4]], "mnist": ns["class_means"](x_train, y_train), "images_after": images}


def probe_nearest_mean(ns: dict) -> dict:
    """Predictions with prototypes the probe picks itself (the first training image of each class: not class means,
    which are exercise 0.1's answer), so a wrong class_means does not cost this part too."""
    from utils import data

    x_train, y_train = data.load_mnist(split="train")
    x_test, _ = data.load_mnist(split="test")
    means = torch.stack([x_train[(y_train == k).nonzero()[0, 0], 0] for k in range(10)])
    gen = torch.Generator().manual_seed(7)
    noisy_means = means + 0.05 * torch.randn(means.shape, generator=gen)
    return {"test": ns["nearest_mean_predict"](x_test, means),
            "noisy_means": ns["nearest_mean_predict"](x_test[:300], noisy_means)}


PROBES = {
    "ex0_1_visible": probe_class_means_visible,
    "ex0_1_hidden": probe_class_means_hidden,
    "ex0_2_extra": probe_nearest_mean,
}

