"""The checks of notebook 00 (the course tour), so that its check cells are one or two lines.

They test properties of the student's functions on inputs whose answer is known by construction; none of them
computes an exercise's answer on the course's data.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from utils import checks


def toy_classes(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nine images of three unsorted classes whose means are known exactly: (images (9, 1, 28, 28), labels (9,),
    means (3, 28, 28)). Class k has 2 + k images, a base image plus deviations that sum to zero; some pixels lie
    outside [0, 1] on purpose."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.rand(3, 28, 28, generator=gen) * 2 - 0.5
    images, labels = [], []
    for k in range(3):
        deviations = torch.randn(2 + k, 28, 28, generator=gen)
        images.append(base[k] + deviations - deviations.mean(0))
        labels += [k] * (2 + k)
    order = torch.randperm(len(labels), generator=gen)
    return torch.cat(images)[order].unsqueeze(1), torch.tensor(labels)[order], base


def class_means(class_means_fn: Callable[..., torch.Tensor]) -> None:
    """Check 0.1: the mean of each class of `toy_classes`, with classes of unequal sizes, in shuffled order."""
    images, labels, expected = toy_classes()
    means = class_means_fn(images, labels, num_classes=3)
    checks.check_shape("class_means", means, (3, 28, 28))
    checks.check_close("class_means", means, expected, rtol=1e-5, atol=1e-6,
                       hint="the mean of class k divides by the number of images of class k.")


def nearest_mean_accuracy(predict: Callable[..., torch.Tensor], class_means_fn: Callable[..., torch.Tensor],
                          train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                          at_least: float = 0.75) -> None:
    """Check 0.2: shape, dtype and test accuracy of the nearest-mean classifier `predict(images, means)`, with the
    means of `class_means_fn` on the (images, labels) of `train`, scored on `test`.

    Below 20% accuracy usually means argmax where argmin was meant."""
    images, labels = test
    predict(images[:2], torch.zeros(10, 28, 28))  # the student's own function first: is Exercise 0.2 answered?
    predictions = predict(images, class_means_fn(*train))
    checks.check_shape("nearest_mean_predict", predictions, (len(images),))
    checks.check_dtype("nearest_mean_predict", predictions, torch.int64)
    accuracy = (predictions == labels).float().mean().item()
    hint = ("the closest mean has the *smallest* distance (argmin, not argmax)." if accuracy < 0.2 else
            "compare each image with every mean, using squared pixel differences summed over pixels.")
    checks.check_between("nearest-mean test accuracy", accuracy, at_least, 1.0, hint=hint)
