"""The check helpers: they pass right answers and name the usual mistakes in wrong ones."""

import numpy as np
import pytest
import torch

from utils import checks


def expected_values():
    return torch.linspace(0.5, 3.0, 12).reshape(3, 4)


def test_check_close_passes_and_prints(capsys):
    e = expected_values().double()
    checks.check_close("thing", e + 1e-9, e)  # worst relative to what is allowed: the smallest |e| = 0.5
    out = capsys.readouterr().out
    assert out.startswith("✓ thing: worst error 1.0e-09 (allowed 5.0e-06: rtol 1e-05, atol 1e-08)"), out


@pytest.mark.parametrize(
    ("wrong", "says"),
    [
        (lambda e: -e, "sign is flipped"),
        (lambda e: e * 784, "constant factor of 784"),
        (lambda e: e / 2, "constant factor of 0.5"),
        (lambda e: e + 0.5 * np.log(2 * np.pi), "off by a constant 0.9189"),
        (lambda e: e.reshape(12), "expected shape (3, 4), got (12,)"),
        (lambda e: e.sum(1), "reduce (sum/mean) over one dimension too many"),
        (lambda e: e[..., None].expand(3, 4, 5), "forget to reduce"),
        (lambda e: e.log() * float("nan"), "NaN or infinite"),
        (lambda e: [1.0, 2.0], "expected a Tensor or ndarray"),
    ],
)
def test_check_close_names_the_mistake(wrong, says):
    e = expected_values()
    with pytest.raises(checks.CheckFailed) as info:
        checks.check_close("thing", wrong(e), e)
    message = str(info.value)
    assert message.startswith("✗ thing:") and says in message, message


def test_hidden_checks_do_not_reveal_expected_values():
    e = expected_values()
    got = e.clone()
    got[1, 2] += 1.0
    with pytest.raises(checks.CheckFailed) as info:
        checks.check_close("hidden", got, e, show_expected=False)
    assert f"{e[1, 2].item():.6g}" not in str(info.value)
    with pytest.raises(checks.CheckFailed) as info:
        checks.check_close("shown", got, e)
    assert f"{e[1, 2].item():.6g}" in str(info.value)


def test_check_between_and_dtype():
    checks.check_between("loss", 95.0, 0, 100)
    with pytest.raises(checks.CheckFailed, match="outside"):
        checks.check_between("loss", 120.0, 0, 100)
    with pytest.raises(checks.CheckFailed, match="NaN loss"):
        checks.check_between("loss", float("nan"), 0, 100)
    with pytest.raises(checks.CheckFailed, match="torch.float32"):
        checks.check_dtype("x", torch.zeros(2, dtype=torch.float64), torch.float32)


def test_rel_error_and_match_variant():
    assert checks.rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert checks.rel_error([1.0], [3.0]) == pytest.approx(0.5)
    e = expected_values()
    variants = {"sum instead of mean": e * 12, "sign flipped": -e}
    assert checks.match_variant(-e, variants) == "sign flipped"
    assert checks.match_variant(e, variants) is None


def test_check_close_reports_the_tested_measure_on_failure():
    e = expected_values()
    wrong = e.clone()
    wrong[1, 2] += 1e-3  # one element off: 1e-3 > atol + rtol * |e| (1.9e-5 at e = 1.86)
    with pytest.raises(checks.CheckFailed) as info:
        checks.check_close("thing", wrong, e)
    message = str(info.value)
    assert "error 1.0e-03 (allowed 1.9e-05: rtol 1e-05, atol 1e-08) is too large" in message, message
    assert "at flat index 6: got 1.86464, expected 1.86364" in message, message
    assert "Hint" not in message, message  # one element off is not a constant offset or factor


def test_a_notebook_shows_one_line_per_unanswered_exercise_and_per_failed_check():
    """In a real kernel: the first use of an unanswered exercise is one ✗ line (an error output), every later cell
    that needs it or a value it would have computed prints one ⏸ line (no error output), a failed check is its ✗
    line alone, and an unrelated NameError keeps its full traceback."""
    import nbformat
    from nbclient import NotebookClient

    cells = ["from utils import checks",
             'def encode(x):\n    # YOUR CODE HERE\n    raise NotImplementedError("Exercise 9.1")',
             "encode(1)",  # the check: first use
             "codes = encode(2)\nscale = 3",  # a later cell that needs it
             "print(codes, scale)",  # needs what the failed cell would have assigned
             "total = scale + 1",  # needs it too, one step further
             "print(total)",
             'checks.check_close("thing", [1.0, 2.0], [1.0, 2.5])',
             "print(undefined_name)"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=60, allow_errors=True, kernel_name="python3").execute()
    outputs = [c.outputs for c in nb.cells]
    errors = {i: o for i, out in enumerate(outputs) for o in out if o.output_type == "error"}
    assert sorted(errors) == [2, 7, 8], errors
    assert errors[2].traceback == ["✗ Exercise 9.1 is not answered yet: write your code under '# YOUR CODE HERE' "
                                   "(and delete the raise NotImplementedError line)."]
    assert len(errors[7].traceback) == 1 and errors[7].traceback[0].startswith("✗ thing: error 5.0e-01"), errors[7]
    assert len(errors[8].traceback) > 1  # not the course's doing: IPython's usual traceback
    notes = {i: "".join(o.text for o in out if o.output_type == "stream") for i, out in enumerate(outputs)}
    assert notes[3] == "⏸ This cell waits for Exercise 9.1, which is not answered yet.\n"
    for i, name in ((4, "codes"), (6, "total")):
        assert notes[i] == (f"⏸ This cell needs `{name}`, which an earlier cell could not compute: it waits for "
                            "Exercise 9.1, which is not answered yet.\n"), notes[i]
