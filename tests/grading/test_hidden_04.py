"""Hidden tests of 04_gradient_estimators: the solution passes, typical wrong answers fail with a message that says why,
and answers memorised for the visible check (θ = 2) fail the hidden parts."""

import pytest
import torch

from tests import nbtools
from tests.grading.gradetools import assert_fails, judge
from tests.test_nb04_checks import (
    GRADE_IDS,
    SCORE_FUNCTION_MISTAKES,
    _z,
    bandit_baseline_added,
    bandit_no_minus_pi,
    bandit_sign,
    bandit_sum,
    baseline_added,
    baseline_first_moment,
    baseline_mean_of_f,
    experiment_with,
    gumbel_grad_no_flow,
    gumbel_grad_no_flow_autograd,
    gumbel_with,
    pathwise_with_sample,
    pw_is_score,
    pw_no_two,
    pw_sum,
    sf_is_pathwise,
    sf_sign,
    sigma_no_chain_rule,
    surrogate_f_not_detached,
    surrogate_no_detach,
    surrogate_sum,
)
from tests.test_nb04_checks import namespace as checks_namespace

NAME = "04_gradient_estimators"
NB = nbtools.load(NAME)


def namespace(**overrides) -> dict:
    return checks_namespace(NB, **overrides)


def fails(grade_id: str, says: str, **overrides) -> str:
    return assert_fails(NAME, grade_id, namespace(**overrides), says)


@pytest.mark.parametrize("grade_id", GRADE_IDS)
def test_solution_passes_every_hidden_test(grade_id):
    verdict = judge(NAME, grade_id, namespace())
    assert verdict.passed, verdict.message


# ---- 4.1 / 4.2: the estimators (wrong answers imported from tests/test_nb04_checks.py, plus one) ------------------
def sf_tensor(theta, n, generator):
    z = _z(theta, n, generator)
    return (z**2 * (z - theta)).mean()


@pytest.mark.parametrize(("wrong", "grade_id", "says"), [
    *SCORE_FUNCTION_MISTAKES,
    (sf_tensor, "ex4_1_visible", "return a Python float"),
])
def test_score_function_mistakes_are_named(wrong, grade_id, says):
    fails(grade_id, says, score_function_grad=wrong)


def test_memorised_visible_estimator_fails_the_hidden_part():
    right = namespace()["score_function_grad"]

    def only_theta_2(theta, n, generator):  # right for the visible check's θ = 2, the pathwise formula elsewhere
        return right(theta, n, generator) if theta == 2.0 else sf_is_pathwise(theta, n, generator)

    assert judge(NAME, "ex4_1_visible", namespace(score_function_grad=only_theta_2)).passed
    fails("ex4_1_hidden", "wrong values", score_function_grad=only_theta_2)


@pytest.mark.parametrize(("wrong", "grade_id", "says"), [
    (pw_sum, "ex4_2_visible", "the sum over samples instead of the mean"),
    (pw_no_two, "ex4_2_visible", "without the factor 2"),
    (pw_is_score, "ex4_2_visible", "that is the score-function estimator"),
    (pw_no_two, "ex4_2_hidden", "constant factor of about 0.5"),
])
def test_pathwise_mistakes_are_named(wrong, grade_id, says):
    fails(grade_id, says, pathwise_grad=wrong)


def test_pathwise_sigma_mistakes_are_named():
    fails("ex4_2_visible", "without the chain rule's factor dz/dσ", pathwise_grad_sigma=sigma_no_chain_rule)
    fails("ex4_2_hidden", "wrong values", pathwise_grad_sigma=sigma_no_chain_rule)


# ---- 4.3: run_experiment -------------------------------------------------------------------------------------------
def test_run_experiment_mistakes_are_named():
    fails("ex4_3_visible", "the variance divides by reps - 1", run_experiment=experiment_with(lambda e: e.var()))
    std = experiment_with(lambda e: e.std(unbiased=False))
    fails("ex4_3_visible", "the variance (not the standard deviation)", run_experiment=std)
    fails("ex4_3_hidden", "the variance (not the standard deviation)", run_experiment=std)
    # #19.3 mutant: reps - 1 is 0.5% off at 200 repetitions; the hidden part sees it on an exact toy case
    fails("ex4_3_hidden", "the variance divides by reps - 1", run_experiment=experiment_with(lambda e: e.var()))


def test_run_experiment_names_a_biased_estimator():
    fails("ex4_3_visible", "your estimator from Exercise 4.1", score_function_grad=sf_sign)


# ---- 4.4: closed-form variances ------------------------------------------------------------------------------------
def test_closed_form_mistakes_are_named():
    fails("ex4_4_visible", "subtract the squared mean", score_function_variance=lambda t: t**4 + 18 * t**2 + 15)
    fails("ex4_4_visible", "the second moment", pathwise_variance=lambda t: 4 * t**2 + 4)
    fails("ex4_4_visible", "not only θ = 2", score_function_variance=lambda t: 87.0)


def test_memorised_visible_variances_fail_the_hidden_part():
    memorised = {2.0: 87.0, 1.0: 30.0}
    ns = {"score_function_variance": lambda t: memorised.get(t, 87.0)}
    assert judge(NAME, "ex4_4_visible", namespace(**ns)).passed
    verdict = judge(NAME, "ex4_4_hidden", namespace(**ns))
    assert not verdict.passed and "derive Var" in verdict.message and "87" not in verdict.message, verdict.message


# ---- 4.5: baselines and surrogates ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("overrides", "grade_id", "says"), [
    ({"score_function_grad_baseline": baseline_added}, "ex4_5_visible", "subtract the baseline from f(z)"),
    ({"optimal_baseline": baseline_mean_of_f}, "ex4_5_visible", "the mean of f, the natural baseline"),
    ({"optimal_baseline": baseline_first_moment}, "ex4_5_visible", "does not minimise"),
    ({"reinforce_surrogate_loss": surrogate_sum}, "ex4_5_visible", "mean (not sum)"),
    ({"reinforce_surrogate_loss": surrogate_no_detach}, "ex4_5_visible", "differentiates through z"),
    ({"reinforce_surrogate_loss": surrogate_f_not_detached}, "ex4_5_visible", "differentiates through z"),
    ({"pathwise_surrogate_loss": pathwise_with_sample}, "ex4_5_visible", "use .rsample(), not .sample()"),
    ({"reinforce_surrogate_loss": surrogate_no_detach}, "ex4_5_hidden", "detach the samples"),
    ({"optimal_baseline": baseline_first_moment}, "ex4_5_hidden", "optimal_baseline is wrong"),
    ({"score_function_grad_baseline": baseline_added}, "ex4_5_hidden", "the mean of (f(z) - b)(z - θ)"),
])
def test_baseline_and_surrogate_mistakes_are_named(overrides, grade_id, says):
    fails(grade_id, says, **overrides)


# ---- 4.6: bandit ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("wrong", "grade_id", "says"), [
    (bandit_no_minus_pi, "ex4_6_visible", "did you forget the -π term?"),
    (bandit_sign, "ex4_6_visible", "the sign is flipped"),
    (bandit_sum, "ex4_6_visible", "mean over the batch, not sum"),
    (bandit_sum, "ex4_6_hidden", "wrong values"),
    (bandit_sign, "ex4_6_hidden", "the sign is flipped"),
    (bandit_baseline_added, "ex4_6_visible", "the baseline is added to the rewards"),
])
def test_bandit_mistakes_are_named(wrong, grade_id, says):
    fails(grade_id, says, bandit_policy_gradient=wrong)


# ---- 4.7: Gumbel-softmax -------------------------------------------------------------------------------------------
def gumbel(u):
    return -torch.log(-torch.log(u))


@pytest.mark.parametrize(("wrong", "grade_id", "says"), [
    (gumbel_with(gumbel, tau_op=lambda x, tau: x * tau), "ex4_7_visible", "divide (logits + g) by τ"),
    (gumbel_with(gumbel, dim=0), "ex4_7_visible", "softmax over the categories"),
    (gumbel_with(lambda u: torch.log(-torch.log(u))), "ex4_7_visible", "Gumbel noise is -log(-log u)"),
    (gumbel_with(lambda u: -torch.log(u)), "ex4_7_visible", "Gumbel noise is -log(-log u)"),
    (gumbel_with(gumbel, detach=True), "ex4_7_visible", "carry no graph"),
    (gumbel_with(lambda u: 0.5 * gumbel(u)), "ex4_7_hidden", "beyond 4.5 standard errors"),
])
def test_gumbel_mistakes_are_named(wrong, grade_id, says):
    fails(grade_id, says, gumbel_softmax_sample=wrong)


def test_gumbel_gradient_sign_is_named():
    right = namespace()["gumbel_softmax_grad"]
    fails("ex4_7_visible", "the gradient of +mean(c · y)", gumbel_softmax_grad=lambda *a: -right(*a))


@pytest.mark.parametrize("wrong", [gumbel_grad_no_flow, gumbel_grad_no_flow_autograd])
def test_gumbel_without_gradient_flow_is_named(wrong):
    message = fails("ex4_7_visible", "no gradient flows", gumbel_softmax_grad=wrong)
    assert "its negative" not in (message or ""), message
