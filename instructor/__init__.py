"""The course's tooling for instructors and TAs: release, grading, Gradescope, the benchmark, the site builder.

Students never receive or import this package. Its modules import the students' library `utils` only where they
run or measure what students run: `bench` (utils.data, utils.train) and `grading.spec` (hashes utils' files).
"""
