"""The tour's check cells pass the solution and fail, with a useful message, on typical wrong answers."""

import pytest
import torch

from tests import nbtools
from utils import checks, checks_tour, data


@pytest.fixture(scope="module")
def nb():
    return nbtools.load("00_course_tour")


@pytest.fixture(scope="module")
def mnist():
    x, y = data.load_mnist(split="train")
    xt, yt = data.load_mnist(split="test")
    return {"x_train": x, "y_train": y, "x_test": xt, "y_test": yt}


def namespace(nb, mnist, **overrides):
    ns = {"torch": torch, "checks": checks, "checks_tour": checks_tour, **mnist}
    for name in ("class_means", "nearest_mean_predict"):
        assert nbtools.run_source(nbtools.cell_defining(nb, name), ns) is None
    ns.update(overrides)
    return ns


def sum_not_mean(images, labels, num_classes=10):
    one_hot = torch.nn.functional.one_hot(labels, num_classes).to(images.dtype)
    return (one_hot.T @ images.reshape(len(images), -1)).reshape(num_classes, 28, 28)


def divided_by_total(images, labels, num_classes=10):  # assumes equal class sizes
    return sum_not_mean(images, labels, num_classes) * num_classes / len(images)


def keeps_channel(images, labels, num_classes=10):
    return torch.stack([images[labels == k].mean(0) for k in range(num_classes)])  # (K, 1, 28, 28)


def in_place(images, labels, num_classes=10):
    images -= 0.0
    images.mul_(1.0000001)
    return torch.stack([images[labels == k].mean(0)[0] for k in range(num_classes)])


@pytest.mark.parametrize("grade_id", ["ex0_1_visible", "ex0_1_hidden"])
def test_solution_passes(nb, mnist, grade_id):
    assert nbtools.run_source(nbtools.cell_by_grade_id(nb, grade_id), namespace(nb, mnist)) is None


@pytest.mark.parametrize(
    ("wrong", "grade_id", "says"),
    [
        (sum_not_mean, "ex0_1_visible", "divides by the number of images of class k"),
        (divided_by_total, "ex0_1_visible", "is too large"),  # unequal class sizes in the toy example catch it
        (keeps_channel, "ex0_1_visible", "expected shape (3, 28, 28), got (3, 1, 28, 28)"),
        (sum_not_mean, "ex0_1_hidden", "constant factor of 400"),
        (in_place, "ex0_1_hidden", "changed its input images in place"),
    ],
)
def test_class_means_checks_catch_mistakes(nb, mnist, wrong, grade_id, says):
    error = nbtools.run_source(nbtools.cell_by_grade_id(nb, grade_id), namespace(nb, mnist, class_means=wrong))
    assert isinstance(error, AssertionError) and says in str(error), error


def test_hidden_check_does_not_reveal_values(nb, mnist):
    error = nbtools.run_source(nbtools.cell_by_grade_id(nb, "ex0_1_hidden"), namespace(nb, mnist, class_means=sum_not_mean))
    assert "expected" not in str(error).split("Hint")[0].replace("expected shape", "")


def test_nearest_mean_check_catches_argmax(nb, mnist):
    def argmax_predict(images, means):
        return torch.cdist(images.reshape(len(images), -1), means.reshape(len(means), -1)).argmax(1)

    error = nbtools.run_source(nbtools.cell_by_grade_id(nb, "ex0_2_extra"),
                               namespace(nb, mnist, nearest_mean_predict=argmax_predict))
    assert isinstance(error, AssertionError) and "argmin, not argmax" in str(error), error


def test_an_unanswered_0_2_names_exercise_0_2_even_when_0_1_is_unanswered_too(nb, mnist):
    def unanswered(*args, **kwargs):
        raise NotImplementedError("Exercise 0.2")

    def unanswered_means(*args, **kwargs):
        raise NotImplementedError("Exercise 0.1")

    error = nbtools.run_source(nbtools.cell_by_grade_id(nb, "ex0_2_extra"),
                               namespace(nb, mnist, nearest_mean_predict=unanswered, class_means=unanswered_means))
    assert isinstance(error, NotImplementedError) and "0.2" in str(error), error


def test_the_tour_check_module_holds_no_answer():
    """The toy example's means are built, not computed from images: no mean over the course's data in the module."""
    import inspect

    source = inspect.getsource(checks_tour)
    assert "load_mnist" not in source and ".mean(0)" not in source.replace("deviations.mean(0)", "")
