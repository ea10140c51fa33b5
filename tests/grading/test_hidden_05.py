"""Hidden tests of 05_vae: the solution passes, typical wrong answers fail with a message that says why.

Trained-model parts are judged on the reference results (the solution's own trained weights, built once per checkout
by `instructor.grading.reference`) and on deliberately broken weights, so no test trains a model.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests import nbtools
from tests.grading.gradetools import assert_fails, assignment_and_reference, judge
from tests.test_nb05_checks import (
    ELBO_MISTAKES,
    REPARAMETERIZE_MISTAKES,
    elbo,
    entropy_in_bits,
    eps_like,
    logits_not_probs,
    uniform_codes,
    wrong_vae_classes,
)

NAME = "05_vae"
NB = nbtools.load(NAME)
DEFINED = ("reparameterize", "negative_elbo", "VAE", "sample_prior", "prediction_scores", "gaussian_grid",
           "importance_log_px", "encoder_gradients")
FUNCTION_PARTS = ("ex5_1_visible", "ex5_1_hidden", "ex5_2_visible", "ex5_2_hidden", "ex5_3_visible", "ex5_3_hidden",
                  "ex5_4_visible", "ex5_4_hidden", "ex5_5_visible", "ex5_5_hidden", "ex5_6_visible", "ex5_6_hidden")
TRAINED_PARTS = ("ex5_3_trained", "ex5_4_margin", "ex5_5_trained", "ex5_6_result", "ex5_7_visible", "ex5_7_result")


def _namespace(**overrides) -> dict:
    ns: dict = {"torch": torch, "nn": nn, "F": F, "math": math, "PIXELS": 784, "HIDDEN": 400, "LATENT": 20}
    for name in DEFINED:
        if name != "prediction_scores":  # defined in the same cell as sample_prior
            assert nbtools.run_source(nbtools.cell_defining(NB, name), ns) is None, name
    ns.update(overrides)
    return ns


def _reference(grade_id: str) -> dict:
    return dict(assignment_and_reference(NAME)[1][grade_id])


def _judge_values(grade_id: str, values: dict):
    assignment, reference = assignment_and_reference(NAME)
    return assignment.judges[grade_id](values, reference[grade_id])


def _solution_vae(ns: dict) -> nn.Module:
    """The solution's VAE class holding the solution's trained weights (from the reference results)."""
    model = ns["VAE"]()
    state = {k[len("vae."):]: v for k, v in _reference("ex5_3_trained").items() if k.startswith("vae.")}
    model.load_state_dict(state, strict=True)
    return model


def _fails(grade_id: str, says: str, **overrides) -> str:
    return assert_fails(NAME, grade_id, _namespace(**overrides), says)


def _module_globals() -> dict:
    return assignment_and_reference(NAME)[0].probes["ex5_7_result"].__globals__


@pytest.mark.parametrize("grade_id", FUNCTION_PARTS)
def test_solution_passes_every_hidden_test(grade_id):
    verdict = judge(NAME, grade_id, _namespace())
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("grade_id", TRAINED_PARTS)
def test_solution_results_pass_the_trained_parts(grade_id):
    """The solution's own trained weights and estimates (the stored reference results) pass the trusted judges."""
    verdict = _judge_values(grade_id, _reference(grade_id))
    assert verdict.passed, verdict.message


@pytest.mark.parametrize(("wrong", "says"), REPARAMETERIZE_MISTAKES)
@pytest.mark.parametrize("grade_id", ["ex5_1_visible", "ex5_1_hidden"])
def test_reparameterize_mistakes_are_named(wrong, says, grade_id):
    _fails(grade_id, says, reparameterize=wrong)


def test_forgotten_half_is_named_by_the_variance_test():
    def forgot_half(mu, logvar, generator=None):
        if mu.dim() == 2 and len(mu) > 1000:  # only the many-draw test sees the wrong scale
            return mu + torch.exp(logvar) * eps_like(mu, generator)
        return mu + torch.exp(0.5 * logvar) * eps_like(mu, generator)

    _fails("ex5_1_visible", "forgot the ½", reparameterize=forgot_half)


def test_reparameterize_memorised_for_the_visible_example_fails_the_hidden_part():
    right = _namespace()["reparameterize"]

    def memorised(mu, logvar, generator=None):
        if mu.shape[-1] == 3:  # the visible example has 3 coordinates
            return right(mu, logvar, generator)
        return mu + logvar * eps_like(mu, generator)

    assert judge(NAME, "ex5_1_visible", _namespace(reparameterize=memorised)).passed
    assert not judge(NAME, "ex5_1_hidden", _namespace(reparameterize=memorised)).passed


@pytest.mark.parametrize(("kind", "says"), [(kind, says.replace("expected shape", "shape")) for kind, says in ELBO_MISTAKES])
@pytest.mark.parametrize("grade_id", ["ex5_2_visible", "ex5_2_hidden"])
def test_negative_elbo_mistakes_are_named(kind, says, grade_id):
    _fails(grade_id, says, negative_elbo=elbo(kind))


def test_negative_elbo_memorised_for_the_visible_example_fails_the_hidden_part():
    right = _namespace()["negative_elbo"]

    def memorised(x, logits, mu, logvar):
        if len(x) == 8:  # the visible example's batch
            return right(x, logits, mu, logvar)
        return tuple(torch.tensor(0.0) for _ in range(3))

    assert judge(NAME, "ex5_2_visible", _namespace(negative_elbo=memorised)).passed
    verdict = judge(NAME, "ex5_2_hidden", _namespace(negative_elbo=memorised))
    assert not verdict.passed and "wrong (loss, reconstruction, kl)" in verdict.message, verdict.message
    assert "largest difference" not in verdict.message  # hidden inputs: expected values are not revealed


def test_vae_without_sampling_or_with_sigmoid_or_fixed_sizes_is_named():
    ns = _namespace()
    DecodesMean, SigmoidDecoder = wrong_vae_classes(ns["VAE"])

    class FixedSizes(ns["VAE"]):  # ignores its arguments: right only for the visible sizes
        def __init__(self, latent_dim=20, hidden=400):
            super().__init__()

    _fails("ex5_3_visible", "no sampling", VAE=DecodesMean)
    _fails("ex5_3_visible", "ends with a sigmoid", VAE=SigmoidDecoder)
    assert judge(NAME, "ex5_3_visible", _namespace(VAE=FixedSizes)).passed
    _fails("ex5_3_hidden", "should be Linear", VAE=FixedSizes)


def test_sampling_and_scoring_mistakes_are_named():
    def tensors_not_floats(classifier, images):
        p = F.softmax(classifier(images), 1).detach()
        return p.max(1).values.mean(), -(p * p.log()).sum(1).mean()

    _fails("ex5_4_visible", "torch.randn (standard normal)", sample_prior=uniform_codes)
    _fails("ex5_4_visible", "outside [0, 1]", sample_prior=logits_not_probs)
    _fails("ex5_4_visible", "natural log", prediction_scores=entropy_in_bits)
    _fails("ex5_4_visible", "Python floats", prediction_scores=tensors_not_floats)
    verdict = judge(NAME, "ex5_4_hidden", _namespace(prediction_scores=entropy_in_bits))
    assert not verdict.passed and "wrong values" in verdict.message and "largest difference" not in verdict.message


def test_prediction_scores_memorised_for_the_visible_example_fails_the_hidden_part():
    ns = _namespace()
    right = ns["prediction_scores"]

    def memorised(classifier, images):
        return right(classifier, images) if len(images) == 2 else (0.5, 1.0)

    assert judge(NAME, "ex5_4_visible", _namespace(prediction_scores=memorised)).passed
    assert not judge(NAME, "ex5_4_hidden", _namespace(prediction_scores=memorised)).passed


def test_grid_mistakes_and_memorised_grid():
    _fails("ex5_5_visible", "probabilities themselves",
           gaussian_grid=lambda n, low=0.05, high=0.95: torch.linspace(low, high, n))
    _fails("ex5_5_visible", "evenly spaced values",
           gaussian_grid=lambda n, low=0.05, high=0.95: torch.linspace(-1.645, 1.645, n))
    right = _namespace()["gaussian_grid"]

    def ignores_bounds(n, low=0.05, high=0.95):
        return right(n)

    assert judge(NAME, "ex5_5_visible", _namespace(gaussian_grid=ignores_bounds)).passed
    _fails("ex5_5_hidden", "evenly spaced probabilities", gaussian_grid=ignores_bounds)


def test_importance_sampling_mistakes_are_named():
    right = _namespace()["importance_log_px"]

    def no_log_k(model, x, k, generator=None):
        return right(model, x, k, generator) + math.log(k)

    def q_without_constant(model, x, k, generator=None):
        mu, _ = model.encode(x)
        return right(model, x, k, generator) + 0.5 * math.log(2 * math.pi) * mu.shape[1]

    def q_std_from_variance(model, x, k, generator=None):  # log q with sd exp(logvar): right only when logvar = 0
        with torch.no_grad():
            mu, logvar = model.encode(x)
            z = mu + torch.exp(0.5 * logvar) * torch.randn((k, *mu.shape), generator=generator)
            log_px_z = -F.binary_cross_entropy_with_logits(model.decoder(z), x.expand(k, *x.shape),
                                                           reduction="none").sum(-1)
            log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
            log_qz = torch.distributions.Normal(mu, logvar.exp()).log_prob(z).sum(-1)
            return torch.logsumexp(log_px_z + log_pz - log_qz, dim=0) - math.log(k)

    _fails("ex5_6_visible", "off by log k", importance_log_px=no_log_k)
    _fails("ex5_6_visible", "same constants", importance_log_px=q_without_constant)
    assert judge(NAME, "ex5_6_visible", _namespace(importance_log_px=q_std_from_variance)).passed
    _fails("ex5_6_hidden", "q's own mean and variance", importance_log_px=q_std_from_variance)


def test_trained_parts_fail_on_untrained_or_misnamed_weights():
    ns = _namespace()
    torch.manual_seed(0)
    untrained = {f"vae.{k}": v for k, v in ns["VAE"]().state_dict().items()}
    verdict = _judge_values("ex5_3_trained", untrained)
    assert not verdict.passed and "outside the accepted range" in verdict.message, verdict.message
    renamed = {k.replace("vae.hidden", "vae.encoder"): v for k, v in _reference("ex5_3_trained").items()}
    verdict = _judge_values("ex5_3_trained", renamed)
    assert not verdict.passed and "do not fit the prescribed architecture" in verdict.message, verdict.message
    torch.manual_seed(0)
    untrained_2d = {f"vae_2d.{k}": v for k, v in ns["VAE"](2).state_dict().items()}
    assert not _judge_values("ex5_5_trained", untrained_2d).passed


def test_margin_fails_when_the_vae_decoder_is_no_better_than_the_autoencoders():
    values = _reference("ex5_4_margin")
    swapped = {k.replace("vae_decoder", "ae_decoder") if k.startswith("vae_decoder") else
               k.replace("ae_decoder", "vae_decoder"): v for k, v in values.items()}
    verdict = _judge_values("ex5_4_margin", swapped)
    assert not verdict.passed and "below 0.04" in verdict.message, verdict.message


def test_importance_result_judged_against_the_trusted_elbo():
    values = _reference("ex5_6_result")
    flat = {k: (values["estimates.k1"] if k.startswith("estimates.") else v) for k, v in values.items()}
    verdict = _judge_values("ex5_6_result", flat)  # the k = 1 estimates for every k: no tightening
    assert not verdict.passed and "do not rise with k" in verdict.message, verdict.message
    shifted = {k: (v + 40.0 if k.startswith("estimates.") else v) for k, v in values.items()}
    verdict = _judge_values("ex5_6_result", shifted)  # e.g. a missing constant: L_1 no longer averages to the ELBO
    assert not verdict.passed and "does not average to the ELBO" in verdict.message, verdict.message


def test_gradient_probes_on_the_solution_and_a_score_estimator_without_the_score(monkeypatch):
    """The 5.7 probes on the solution's trained VAE (fewer repeats, to stay fast), and a typical mistake."""
    module = _module_globals()
    monkeypatch.setitem(module, "REPEATS", 40)
    monkeypatch.setitem(module, "_GRADIENT_CACHE", [])
    ns = _namespace()
    ns["vae"] = _solution_vae(ns)
    for grade_id in ("ex5_7_visible", "ex5_7_result"):
        verdict = judge(NAME, grade_id, ns)
        assert verdict.passed, verdict.message
    right = ns["encoder_gradients"]

    def pathwise_twice(model, x, method, generator=None):  # "score" keeps z attached: it is the pathwise estimator
        return right(model, x, "pathwise", generator)

    verdict = judge(NAME, "ex5_7_result", {**ns, "encoder_gradients": pathwise_twice})
    assert not verdict.passed and "below 10" in verdict.message, verdict.message

    def leaves_grad(model, x, method, generator=None):
        out = right(model, x, method, generator)
        next(model.parameters()).grad = torch.zeros_like(next(model.parameters()))
        return out

    verdict = judge(NAME, "ex5_7_visible", {**ns, "encoder_gradients": leaves_grad})
    assert not verdict.passed and ".grad was filled in" in verdict.message, verdict.message


def test_unanswered_exercises_and_missing_models_say_so():
    def unanswered(mu, logvar, generator=None):
        raise NotImplementedError("Exercise 5.1")

    verdict = judge(NAME, "ex5_1_visible", _namespace(reparameterize=unanswered))
    assert not verdict.passed and "NotImplementedError" in verdict.message and "in-place" not in verdict.message
    verdict = judge(NAME, "ex5_3_trained", _namespace())  # the training cell did not create `vae`
    assert not verdict.passed and "lacks a name or a trained model" in verdict.message, verdict.message


# ------------------------------------------------------------------------------------ #19.3 mutants of notebook 05
def test_importance_sampling_with_unit_variance_q_is_named():
    """The hidden q is wide and off the prior's centre: a log q with unit variance is seen and named."""
    from tests.test_nb05_checks import unit_variance_q

    _fails("ex5_6_hidden", "not 1", importance_log_px=unit_variance_q(None))


def test_vae_without_relu_is_named_by_the_judges():
    ns = _namespace()

    class LinearEncoder(ns["VAE"]):
        def encode(self, x):
            h = self.hidden(x)
            return self.mu(h), self.logvar(h)

    _fails("ex5_3_visible", "encoder is an affine function", VAE=LinearEncoder)
    _fails("ex5_3_hidden", "encoder is an affine function", VAE=LinearEncoder)


def test_trained_parts_name_the_failing_upstream_exercise():
    """Judged together with what 5.1-5.3's visible probes see: a failed later part says which earlier exercise fails
    its own check (diagnosis upstream_failed); the grader does not substitute the reference function."""
    ns = _namespace(negative_elbo=elbo("sign"))
    torch.manual_seed(0)
    ns["vae"] = ns["VAE"]()  # untrained, as a broken loss would leave it
    verdict = judge(NAME, "ex5_3_trained", ns)
    assert not verdict.passed and verdict.diagnosis == "upstream_failed", verdict.message
    assert "uses your negative_elbo from 5.2, which fails its check" in verdict.message, verdict.message
    verdict = judge(NAME, "ex5_3_trained", _namespace(vae=ns["vae"]))  # 5.1-5.3 right: the bound's own message
    assert not verdict.passed and "fails its check" not in verdict.message, verdict.message
