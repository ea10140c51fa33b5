import matplotlib

matplotlib.use("Agg")  # unit tests draw headless; notebooks keep their inline backend


def pytest_terminal_summary(terminalreporter) -> None:
    """After the tests: how many attacks of the exploit corpus were graded for real (tests/grading/isolation.py)."""
    import os

    from tests.grading.isolation import REQUIRE_VARIABLE, summary_line

    line = summary_line()
    if line is not None:
        terminalreporter.write_line(line)
    elif os.environ.get(REQUIRE_VARIABLE):
        terminalreporter.write_line("exploit corpus: no attack was graded")
