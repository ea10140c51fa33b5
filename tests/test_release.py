"""The release tool (solutions/ -> notebooks/) and the check that notebooks/ is what it generates."""

import json
import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from instructor import release

SOLUTION_CODE = '''def square(x):
    """Return x squared."""
    ### BEGIN SOLUTION
    result = x * x
    return result
    ### END SOLUTION'''

CHECK_CODE = '''assert square(3) == 9
### BEGIN HIDDEN TESTS
assert square(-4) == 16
### END HIDDEN TESTS'''


def make_notebook(*cells):
    nb = new_notebook(cells=list(cells))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    return nb


def source_notebook():
    solution = new_code_cell(SOLUTION_CODE, metadata={"course": {"exercise": "0.1"}})
    solution.outputs = [nbformat.v4.new_output("stream", text="secret output")]
    solution.execution_count = 3
    check = new_code_cell(CHECK_CODE, metadata={"tags": ["check"]})
    uses = new_code_cell("print(square(2))", metadata={"tags": ["needs-answer"]})
    plain = new_code_cell("import math")
    answer = new_markdown_cell("**Question.** Why?\n\n### BEGIN SOLUTION\nBecause 3 * 3 = 9.\n### END SOLUTION")
    return make_notebook(new_markdown_cell("# Title"), solution, check, uses, plain, answer)


def test_solution_regions_become_stubs_with_indentation():
    student = release.student_notebook(source_notebook(), "t.ipynb")
    code = student.cells[1].source
    assert code.splitlines()[:2] == ['def square(x):', '    """Return x squared."""']
    assert '    # YOUR CODE HERE\n    raise NotImplementedError("Exercise 0.1")' in code
    assert "result" not in code
    compile(code, "cell", "exec")  # still valid Python


def test_hidden_tests_removed_and_outputs_cleared():
    student = release.student_notebook(source_notebook(), "t.ipynb")
    assert student.cells[2].source == "assert square(3) == 9"
    assert student.cells[1].outputs == [] and student.cells[1].execution_count is None
    assert "YOUR ANSWER HERE" in student.cells[5].source and "Because" not in student.cells[5].source


def test_cells_that_need_an_answer_are_tagged_others_not():
    student = release.student_notebook(source_notebook(), "t.ipynb")
    tags = [c.metadata.get("tags", []) for c in student.cells]
    assert "raises-exception" in tags[1]  # solution cell
    assert tags[2] == ["check", "raises-exception"]  # graded check
    assert tags[3] == ["needs-answer", "raises-exception"]
    assert tags[4] == []  # plain code must still run without error


def test_source_notebook_is_not_modified():
    nb = source_notebook()
    before = json.dumps(nb, sort_keys=True)
    release.student_notebook(nb, "t.ipynb")
    assert json.dumps(nb, sort_keys=True) == before


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("### BEGIN SOLUTION\nx = 1", "line 1: solution region is never closed"),
        ("x = 1\n### END SOLUTION", "line 2: '### END SOLUTION' without a matching BEGIN"),
        ("### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS\n### END SOLUTION", "line 2: "),
        ("### BEGIN HIDDEN TESTS\n### END SOLUTION", "without a matching BEGIN"),
        ("x = 1  ### BEGIN SOLUTION", "must stand alone"),
    ],
)
def test_bad_markers_name_file_cell_and_line(source, says):
    nb = make_notebook(new_markdown_cell("intro"), new_code_cell(source))
    with pytest.raises(release.MarkerError) as info:
        release.student_notebook(nb, "solutions/07_x.ipynb")
    assert "solutions/07_x.ipynb, cell 2" in str(info.value) and says in str(info.value)


def test_release_writes_checks_and_is_idempotent(tmp_path):
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    nbformat.write(source_notebook(), solutions / "01_t.ipynb")
    before = (solutions / "01_t.ipynb").read_bytes()
    assert release.release(solutions, notebooks, check=True) == ["01_t.ipynb"]
    assert not (notebooks / "01_t.ipynb").exists()  # check mode writes nothing
    assert release.release(solutions, notebooks) == ["01_t.ipynb"]
    first = (notebooks / "01_t.ipynb").read_bytes()
    assert release.release(solutions, notebooks) == []  # idempotent
    assert (notebooks / "01_t.ipynb").read_bytes() == first
    assert (solutions / "01_t.ipynb").read_bytes() == before  # never touches solutions/
    # A hand edit is detected.
    (notebooks / "01_t.ipynb").write_text(first.decode().replace("Title", "My title"))
    assert release.release(solutions, notebooks, check=True) == ["01_t.ipynb"]


def test_bad_markers_stop_release_before_writing(tmp_path):
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    nbformat.write(source_notebook(), solutions / "01_good.ipynb")
    nbformat.write(make_notebook(new_code_cell("### BEGIN SOLUTION")), solutions / "02_bad.ipynb")
    with pytest.raises(release.MarkerError, match="02_bad.ipynb, cell 1"):
        release.release(solutions, notebooks)
    assert not notebooks.exists() or not list(notebooks.iterdir())


def test_student_notebooks_are_in_sync_with_solutions():
    """Fails when someone edits notebooks/ by hand or forgets `make release` after editing solutions/."""
    assert release.release(check=True) == [], "notebooks/ is out of date: run `make release`"


def solution_lines(nb):
    """Substantial lines inside solution/hidden regions that appear nowhere else in the notebook."""
    inside, outside = set(), set()
    for cell in nb.cells:
        lines = cell.source.split("\n")
        covered = set()
        for region in release.find_regions(cell.source, "nb"):
            covered.update(range(region.start + 1, region.end))
        for i, line in enumerate(lines):
            text = line.strip()
            (inside if i in covered else outside).add(text)
    return {t for t in inside - outside if len(t) >= 12 and not t.startswith("#")}


def test_student_notebooks_contain_no_solution_text():
    marker = re.compile(r"(BEGIN|END) (SOLUTION|HIDDEN TESTS)")
    pairs = sorted(release.SOLUTIONS.glob("*.ipynb"))
    assert pairs, "no instructor notebooks found"
    for path in pairs:
        student = (release.NOTEBOOKS / path.name).read_text(encoding="utf-8")
        assert not marker.search(student), f"{path.name}: a marker leaked into the student version"
        student_lines = {line.strip() for cell in nbformat.reads(student, as_version=4).cells
                         for line in cell.source.split("\n")}
        leaked = sorted(solution_lines(nbformat.read(path, as_version=4)) & student_lines)
        assert not leaked, f"{path.name}: solution text in the student version: {leaked[:3]}"


def test_student_bundle_holds_no_solutions_hidden_tests_or_references(tmp_path):
    import zipfile

    target = tmp_path / "bundle.zip"
    assert release.main(["--bundle", str(target)]) == 0
    with zipfile.ZipFile(target) as z:
        names = z.namelist()
        texts = {n: z.read(n).decode("utf-8", errors="replace") for n in names if not n.endswith(".npz")}
    top = {n.split("/")[1] for n in names}
    assert top == {"README.md", "requirements.txt", "notebooks", "utils"}, top  # no tooling, no tests, no solutions
    assert {"vae-course/notebooks/05_vae.ipynb", "vae-course/utils/train.py", "vae-course/utils/datasets/mnist_5000.npz",
            "vae-course/utils/datasets/README.md"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or (n.endswith((".npz", ".pt")) and "datasets" not in n)]
    marker = re.compile(r"(BEGIN|END) (SOLUTION|HIDDEN TESTS)")
    assert not [n for n, t in texts.items() if marker.search(t) and n.endswith(".ipynb")]
    hidden_sources = [p.read_text() for p in (release.SOLUTIONS / "grading").glob("*/*.py")]  # probes.py, judges.py
    # The hidden tests' own definitions (probe and judge functions, the PROBES/JUDGES tables) must appear nowhere.
    probe_lines = {line.strip() for src in hidden_sources for line in src.splitlines()
                   if line.startswith(("def ", "PROBES", "JUDGES")) or line.strip().startswith('"ex')}
    assert len(probe_lines) > 10
    leaked = [line for line in probe_lines if any(line in t for t in texts.values())]
    assert not leaked, f"hidden-test code in the student bundle: {leaked[:3]}"
    for path in sorted(release.SOLUTIONS.glob("*.ipynb")):
        student = nbformat.reads(texts[f"vae-course/notebooks/{path.name}"], as_version=4)
        lines = {line.strip() for cell in student.cells for line in cell.source.split("\n")}
        assert not solution_lines(nbformat.read(path, as_version=4)) & lines, path.name


def test_test_markers_are_cell_tags_not_comments_a_student_reads():
    for path in sorted(release.SOLUTIONS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        marker = re.compile(r"#\s*(NBVAL|PYTEST_VALIDATE)_")
        marked = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and marker.search(c.source)]
        assert not marked, f"{path.name} cells {marked}: use the nbval-... cell tags instead of comments"
    tagged = [p.name for p in release.SOLUTIONS.glob("*.ipynb")
              if any("nbval-check-output" in c.metadata.get("tags", []) for c in nbformat.read(p, as_version=4).cells)]
    assert len(tagged) >= 3, tagged  # the data and seeded-number cells nbval compares


def test_cells_are_locked_as_nbgrader_locks_them():
    """Check cells: neither editable nor deletable; answer cells (code and written): not deletable; others: free."""
    nb = source_notebook()
    nb.cells[1].metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "a", "locked": False}
    nb.cells[2].metadata["nbgrader"] = {"solution": False, "grade": True, "grade_id": "c", "locked": True, "points": 1}
    nb.cells[5].metadata["nbgrader"] = {"solution": True, "grade": True, "grade_id": "w", "locked": False, "points": 1}
    student = release.student_notebook(nb, "t.ipynb")
    locks = [(c.metadata.get("editable"), c.metadata.get("deletable")) for c in student.cells]
    assert locks == [(None, None), (None, False), (False, False), (None, None), (None, None), (None, False)]


def test_every_check_cell_of_the_student_notebooks_is_locked():
    for path in sorted(release.NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        checks = [c for c in nb.cells if "check" in c.metadata.get("tags", [])]
        assert checks, path.name
        assert all(c.metadata.get("editable") is False and c.metadata.get("deletable") is False for c in checks), path.name
