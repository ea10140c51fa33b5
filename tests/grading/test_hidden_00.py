"""Hidden tests of 00_course_tour: the solution passes, typical wrong answers fail with a message that says why."""

import torch

from tests import nbtools
from tests.grading.gradetools import assert_fails, judge

NAME = "00_course_tour"
NB = nbtools.load(NAME)


def _namespace(**overrides) -> dict:
    ns: dict = {"torch": torch}
    for name in ("class_means", "nearest_mean_predict"):
        nbtools.run_source(nbtools.cell_defining(NB, name), ns)
    ns.update(overrides)
    return ns


def _fails(grade_id: str, says: str, **overrides) -> str:
    return assert_fails(NAME, grade_id, _namespace(**overrides), says)


def test_solution_passes_every_hidden_test():
    for gid in ("ex0_1_visible", "ex0_1_hidden", "ex0_2_extra"):
        verdict = judge(NAME, gid, _namespace())
        assert verdict.passed, verdict.message


def test_dividing_by_the_total_count_fails_with_the_sizes_hint():
    def wrong(images, labels, num_classes=10):
        one_hot = torch.nn.functional.one_hot(labels, num_classes).to(images.dtype)
        return (one_hot.T @ images.reshape(len(images), -1) / len(images)).reshape(num_classes, 28, 28)

    assert_fails(NAME, "ex0_1_hidden", _namespace(class_means=wrong), "different sizes", "divides_by_total_count")


def test_hard_coded_visible_answer_fails_the_hidden_inputs():
    ns = _namespace()
    visible = ns["class_means"]

    def memorised(images, labels, num_classes=10):
        if len(images) == 9:  # the visible example
            return visible(images, labels, num_classes)
        return torch.zeros(num_classes, 28, 28)

    assert judge(NAME, "ex0_1_visible", _namespace(class_means=memorised)).passed
    _fails("ex0_1_hidden", "wrong values", class_means=memorised)


def test_in_place_modification_is_named():
    ns = _namespace()
    right = ns["class_means"]

    def in_place(images, labels, num_classes=10):
        out = right(images, labels, num_classes)
        images.mul_(1.0 + 1e-3)
        return out

    assert_fails(NAME, "ex0_1_hidden", _namespace(class_means=in_place), "in place", "input_modified_in_place")


def test_argmax_instead_of_argmin_fails():
    def wrong(images, means):
        return torch.cdist(images.reshape(len(images), -1), means.reshape(len(means), -1)).argmax(1)

    assert_fails(NAME, "ex0_2_extra", _namespace(nearest_mean_predict=wrong), "agrees with the reference on only",
                 "argmax_for_argmin")
