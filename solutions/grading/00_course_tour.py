"""Hidden tests for 00_course_tour (instructor material: never released to students).

PROBES run in the student's kernel and only return tensors; JUDGES run in the trusted grader.
"""

import torch

from instructor.grading.judge import agree, all_of, close


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
    before = images.clone()
    small = ns["class_means"](images, labels, num_classes=5)
    x_train, y_train = data.load_mnist(split="train")
    return {"small_classes": small[[0, 1, 2, 4]], "mnist": ns["class_means"](x_train, y_train),
            "input_unchanged": torch.equal(before, images)}


def probe_nearest_mean(ns: dict) -> dict:
    """Predictions with means the probe computes itself, so a wrong class_means does not cost this part too."""
    from utils import data

    x_train, y_train = data.load_mnist(split="train")
    x_test, _ = data.load_mnist(split="test")
    means = torch.stack([x_train[y_train == k].mean(0)[0] for k in range(10)])
    gen = torch.Generator().manual_seed(7)
    noisy_means = means + 0.05 * torch.randn(means.shape, generator=gen)
    return {"test": ns["nearest_mean_predict"](x_test, means),
            "noisy_means": ns["nearest_mean_predict"](x_test[:300], noisy_means)}


PROBES = {
    "ex0_1_visible": probe_class_means_visible,
    "ex0_1_hidden": probe_class_means_hidden,
    "ex0_2_extra": probe_nearest_mean,
}

JUDGES = {
    "ex0_1_visible": close(rtol=1e-5, atol=1e-6, hidden=False, label="class_means",
                           hints={"means": "the mean of class k divides by the number of images of class k."}),
    "ex0_1_hidden": close(rtol=1e-4, atol=1e-6, label="class_means", hints={
        "small_classes": "classes have different sizes, and a class can be empty; images may be float64.",
        "mnist": "average over the images of each class, per pixel.",
        "input_unchanged": "class_means changed its input images in place: work on a copy.",
    }),
    "ex0_2_extra": all_of(agree("test", 0.99, label="nearest_mean_predict on the test set"),
                          agree("noisy_means", 0.99, label="nearest_mean_predict with other means")),
}
