"""A graded class written without grading anything: grades folders built from `Outcome`s and `Verdict`s through the
grader's own writer (`report.write_reports`), for the class report's and the LMS export's tests.

Each student is (id, status, seconds, failures): failures maps grade ids to (diagnosis, message); every other part
passes, except for `invalid` and `missing` submissions, which have no verdicts. The expected counts below are written
by hand from these tables, not computed by the code under test.
"""

from __future__ import annotations

from pathlib import Path

from instructor.grading import report
from instructor.grading.grader import Outcome
from instructor.grading.judge import Verdict
from instructor.grading.spec import Assignment, load_assignment

Failures = dict[str, tuple[str, str]]

SIGMA_05 = ("sigma_for_variance", "✗ reparameterize: the samples' spread is exp(logvar), not exp(½·logvar). "
                                  "Hint: σ = exp(½ log σ²); σ² was used where σ was meant.")
KL_HALF = ("kl_missing_half", "✗ negative_elbo: the KL term is twice the expected value. Hint: KL has a factor ½.")
MEAN_PIXELS = ("mean_over_pixels", "✗ negative_elbo: off by a factor 784. Hint: sum over pixels, mean over the batch.")
UNTRAINED = ("", "✗ trained VAE: negative ELBO 190.2 nats on the test images, expected below 120")
KERNEL_DIED = ("", "✗ not graded: the kernel died before this part ran")
OUT_OF_TIME = ("", "✗ not graded: the notebook ran out of time before this part")
UNANSWERED = ("unanswered", "✗ not answered yet (raises NotImplementedError)")


def _all(assignment: Assignment, failure: tuple[str, str], start: str = "") -> Failures:
    """Every auto-graded part (from grade id `start` on, in notebook order) failing with `failure`."""
    ids = [p.grade_id for p in assignment.checks]
    return {gid: failure for gid in ids[ids.index(start) if start else 0:]}


def class_05(a: Assignment) -> list[tuple[str, str, float, Failures]]:
    """Notebook 05: solutions, blanks, the typical mistakes, and every status."""
    return [
        ("sol-a", "ok", 41.0, {}), ("sol-b", "ok", 43.5, {}), ("sol-c", "ok", 45.0, {}),
        ("blank-a", "ok", 12.0, _all(a, UNANSWERED)), ("blank-b", "ok", 11.0, _all(a, UNANSWERED)),
        ("sigma-a", "ok", 40.0, {"ex5_1_visible": SIGMA_05, "ex5_1_hidden": SIGMA_05}),
        ("sigma-b", "ok", 40.0, {"ex5_1_hidden": SIGMA_05}),
        ("sigma-c", "ok", 42.0, {"ex5_1_visible": SIGMA_05, "ex5_1_hidden": SIGMA_05, "ex5_2_hidden": KL_HALF}),
        ("half-a", "ok", 44.0, {"ex5_2_visible": KL_HALF, "ex5_2_hidden": KL_HALF}),
        ("half-b", "ok", 44.0, {"ex5_2_visible": KL_HALF}),
        ("pixels-a", "ok", 39.0, {"ex5_2_visible": MEAN_PIXELS, "ex5_2_hidden": MEAN_PIXELS, "ex5_3_trained": UNTRAINED}),
        ("pixels-b", "ok", 39.0, {"ex5_2_visible": MEAN_PIXELS, "ex5_3_trained": UNTRAINED}),
        ("pixels-c", "ok", 38.0, {"ex5_2_hidden": MEAN_PIXELS}),
        ("pixels-d", "ok", 38.0, {"ex5_2_visible": MEAN_PIXELS}),
        ("crash-a", "crashed", 20.0, _all(a, KERNEL_DIED, "ex5_2_visible")),
        ("slow-a", "timeout", 1200.0, {"ex5_3_trained": OUT_OF_TIME, "ex5_5_trained": OUT_OF_TIME,
                                       "ex5_6_result": OUT_OF_TIME, "ex5_7_result": OUT_OF_TIME}),
        ("mem-a", "memory", 30.0, {}), ("junk-a", "invalid", 0.0, {}), ("gone-a", "missing", 0.0, {}),
    ]


# {exercise: [(diagnosis, students)]} in the report's order (most students first, "other" last among equals).
# mem-a (memory), junk-a (invalid) and gone-a (missing) have no verdicts, so no mistakes: they count in the statuses.
EXPECTED_05 = {
    "5.1": [("sigma_for_variance", 3), ("unanswered", 2)],
    "5.2": [("mean_over_pixels", 4), ("kl_missing_half", 3), ("unanswered", 2), ("other", 1)],
    "5.3": [("other", 4), ("unanswered", 2)],
    "5.4": [("unanswered", 2), ("other", 1)],
    "5.5": [("unanswered", 2), ("other", 2)],
    "5.6": [("unanswered", 2), ("other", 2)],
    "5.7": [("unanswered", 2), ("other", 2)],
}

SIGMA_02 = ("sigma_for_variance", "✗ kl_normal: matches the KL with σ in place of σ². Hint: logvar is log σ².")
KL_HALF_02 = ("kl_missing_half", "✗ kl_normal: twice the expected KL. Hint: the Gaussian KL has a factor ½.")
NOT_NORMALISED = ("responsibilities_not_normalised", "✗ e_step: responsibilities do not sum to 1 over components.")
ELBO_OTHER = ("", "✗ elbo: relative error 0.31 on the hidden grid (tol 1e-4)")
WRITTEN_02 = {"2.1q": "Because log is concave, the mean of the logs is below the log of the mean.",
              "2.4q": "The posterior is bimodal and a Gaussian has one mode; the printed gap log p(x) - ELBO is left.",
              "2.5q": "YOUR ANSWER HERE", "2.6q": ""}


def class_02(a: Assignment) -> list[tuple[str, str, float, Failures]]:
    """Notebook 02: solutions, a blank, the KL and EM mistakes."""
    return [
        ("sol-a", "ok", 20.0, {}), ("sol-b", "ok", 21.0, {}),
        ("blank-a", "ok", 6.0, _all(a, UNANSWERED)),
        ("sigma-a", "ok", 19.0, {"ex2_3_visible": SIGMA_02, "ex2_3_hidden": SIGMA_02}),
        ("sigma-b", "ok", 19.0, {"ex2_3_hidden": SIGMA_02, "ex2_4_hidden": ELBO_OTHER}),
        ("sigma-c", "ok", 19.0, {"ex2_3_visible": SIGMA_02}),
        ("half-a", "ok", 18.0, {"ex2_3_visible": KL_HALF_02, "ex2_3_hidden": KL_HALF_02}),
        ("em-a", "ok", 25.0, {"ex2_2_em_visible": NOT_NORMALISED, "ex2_2_hidden": NOT_NORMALISED}),
        ("em-b", "ok", 25.0, {"ex2_2_visible": NOT_NORMALISED}),
        ("gone-a", "missing", 0.0, {}),
    ]


EXPECTED_02 = {
    "2.1": [("unanswered", 1)],
    "2.2": [("responsibilities_not_normalised", 2), ("unanswered", 1)],
    "2.3": [("sigma_for_variance", 3), ("kl_missing_half", 1), ("unanswered", 1)],
    "2.4": [("unanswered", 1), ("other", 1)],
    "2.5": [("unanswered", 1)],
    "2.6": [("unanswered", 1)],
}

CLASSES = {"05_vae": class_05, "02_latent_variables_elbo": class_02}


def outcomes(a: Assignment) -> tuple[list[Outcome], dict[str, dict[str, str]]]:
    """The class's outcomes and written answers (every student who ran wrote the same answers)."""
    result, written = [], {}
    for student, status, seconds, failures in CLASSES[a.name](a):
        verdicts = {}
        if status not in ("invalid", "missing", "memory"):
            for p in a.checks:
                diagnosis, message = failures.get(p.grade_id, ("", ""))
                verdicts[p.grade_id] = (Verdict(False, message, diagnosis) if p.grade_id in failures
                                        else Verdict(True, f"✓ {p.grade_id}"))
        result.append(Outcome(student, status, verdicts, seconds, "" if status == "ok" else f"{status} (corpus)"))
        if status not in ("invalid", "missing") and a.written:
            written[student] = dict(WRITTEN_02)
    return result, written


def write_class(folder: Path, name: str, manual: dict[str, dict[str, float]] | None = None) -> Path:
    """Write the grades folder of class `name` ('05_vae' or '02_latent_variables_elbo') into `folder`."""
    a = load_assignment(name)
    graded, written = outcomes(a)
    report.write_reports(folder, a, graded, written, manual or {})
    return folder
