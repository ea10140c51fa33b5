# The course's commands. `make lab` opens the course, `make test` runs every test.
# Both create .venv on first use: `make lab` installs requirements.txt (what the notebooks need), every other target
# also requirements-dev.txt (tests, grading, release). Later runs reuse it.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.dev-installed
# One thread: bit-identical CPU results, and no slow-down on a busy 2-core machine.
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0

.PHONY: venv lab test lint unit nbval test-grading test-nbgrader test-browser release execute-solutions bench bench-grading grade report export grading-reference gradescope site site-instructor test-site clean-venv

venv: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	@# Make `import utils` work from any notebook folder inside this venv.
	$(PY) -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'vae_course.pth').write_text(str(pathlib.Path.cwd()) + '\n')"
	@# No "fetch Jupyter news?" prompt and no update check when a student opens the course; long code lines wrap
	@# instead of running off a laptop screen.
	$(PY) -c "import json, pathlib, sys; p = pathlib.Path(sys.prefix, 'share/jupyter/lab/settings/overrides.json'); p.parent.mkdir(parents=True, exist_ok=True); p.write_text(json.dumps({'@jupyterlab/apputils-extension:notification': {'fetchNews': 'false', 'checkForUpdates': False}, '@jupyterlab/notebook-extension:tracker': {'codeCellConfig': {'lineWrap': True}}}, indent=1))"
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $(DEV_STAMP)

# Containers and cloud machines often run as root, which JupyterLab refuses without --allow-root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. $(ROOT_FLAG) $(LAB_ARGS) notebooks/00_course_tour.ipynb

test: $(DEV_STAMP)
	$(MAKE) --no-print-directory lint unit nbval

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check utils instructor tests solutions

unit: $(DEV_STAMP)
	$(TEST_ENV) $(PY) -m pytest tests --ignore=tests/browser --ignore=tests/site --ignore=tests/nbgrader -m "not corpus"

# The full grading corpus (tests marked `corpus`): every solution notebook full marks, every student version 0,
# the exploit corpus and the answer attacks on 02, 04 and 05, each graded for real in the sandbox. About 25 minutes
# on 2 cores; .ci/run runs it. Needs root on Linux (namespaces, per-submission cgroups): without them it fails rather
# than skips.
test-grading: $(DEV_STAMP)
	$(TEST_ENV) VAE_REQUIRE_ISOLATION=1 $(PY) -m pytest tests/grading tests/test_gradescope.py -m corpus -p no:cacheprovider --durations=10

# Real nbgrader (requirements-nbgrader.txt, in its own venv build/nbgrader-venv, made on first use) on all six
# notebooks: generate_assignment, the student version against the course's release, autograde of the solutions (full
# marks), the student versions (0) and a no-op-checks submission (README, "Grading with nbgrader"). 16-19 minutes
# measured on a busy 2-core machine (load 7-13); .ci/run runs it. The nbgrader course folder, its gradebook and scores.json: build/nbgrader/.
NBGRADER_VENV := build/nbgrader-venv
NBGRADER_STAMP := $(NBGRADER_VENV)/.installed
$(NBGRADER_STAMP): requirements-nbgrader.txt
	@test -x $(NBGRADER_VENV)/bin/python || $(PYTHON) -m venv $(NBGRADER_VENV)
	$(NBGRADER_VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements-nbgrader.txt
	@touch $(NBGRADER_STAMP)

test-nbgrader: $(DEV_STAMP) $(NBGRADER_STAMP)
	$(TEST_ENV) NBGRADER_VENV=$(NBGRADER_VENV) $(PY) -m pytest tests/nbgrader -v -p no:cacheprovider --durations=5

nbval: $(DEV_STAMP)
	$(TEST_ENV) $(PY) -m pytest --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider solutions notebooks

# The course in JupyterLab in headless Chromium, as a student uses it (tests/browser; needs /usr/bin/chromium).
# Not part of `make test`. Screenshots and the server's log: build/browser-artifacts/.
test-browser: $(DEV_STAMP)
	$(TEST_ENV) $(PY) -m pytest tests/browser -v --durations=0 -p no:cacheprovider

# notebooks/ from solutions/, and the student bundle (a zip without solutions/, hidden tests or tests/).
release: $(DEV_STAMP)
	$(PY) -m instructor.release $(if $(NB),--only $(NB),) --bundle build/vae-course-student.zip

# Re-execute the instructor notebooks in place (stores their outputs), then regenerate the student versions.
# NB=04 limits release and execute-solutions to the notebooks whose name starts with 04.
execute-solutions: $(DEV_STAMP)
	$(TEST_ENV) $(PY) -m instructor.release --execute-solutions $(if $(NB),--only $(NB),)

# The benchmark (README, Performance): figures in build/bench/. BENCH_ARGS="--skip-notebooks" times only training.
bench: $(DEV_STAMP)
	$(TEST_ENV) $(PY) -m instructor.bench $(BENCH_ARGS)

# Grade a folder (or .zip) of <student>/<assignment>.ipynb: make grade NB=05 SUB=path/to/submissions [OUT=grades/05]
# Extra options (see `python -m instructor.grade run --help`) go in ARGS, e.g. ARGS="--workers 4 --cell-timeout 600".
grade: $(DEV_STAMP)
	@test -n "$(NB)" -a -n "$(SUB)" || { echo "usage: make grade NB=05 SUB=path/to/submissions [OUT=grades/05]"; exit 2; }
	$(PY) -m instructor.grade run $(NB) $(SUB) --out $(or $(OUT),grades/$(NB)) $(ARGS)

# The class report of a graded batch (README, "For TAs: grading"): grades/05/report.html from grades/05/grades.json,
# never regrading. make report NB=05 [GRADES=grades/05] [ARGS=--per-student]
report: $(DEV_STAMP)
	@test -n "$(NB)" || { echo "usage: make report NB=05 [GRADES=grades/05] [ARGS=--per-student]"; exit 2; }
	$(PY) -m instructor.classreport $(or $(GRADES),grades/$(NB)) --assignment $(NB) $(ARGS)

# Grades for the LMS: make export NB=05 FORMAT=canvas|moodle|csv ROSTER=roster.csv MISSING=zero|blank
# [GRADES=grades/05] [OUT=grades/05/canvas.csv] [ARGS="--canvas-assignment-id 123"] (python -m instructor.export -h)
export: $(DEV_STAMP)
	@test -n "$(NB)" -a -n "$(FORMAT)" || { echo "usage: make export NB=05 FORMAT=canvas|moodle|csv ROSTER=roster.csv MISSING=zero|blank"; exit 2; }
	$(PY) -m instructor.export $(or $(GRADES),grades/$(NB)) --format $(FORMAT) --out $(or $(OUT),$(or $(GRADES),grades/$(NB))/$(FORMAT).csv) $(if $(ROSTER),--roster $(ROSTER),) $(if $(MISSING),--missing $(MISSING),) $(ARGS)

# Benchmark (not a test): grade 20 mixed submissions of one notebook (NB, default 02); JSON in build/bench/.
bench-grading: $(DEV_STAMP)
	$(TEST_ENV) $(PY) tests/bench/bench_grading.py $(or $(NB),02) --students 20

# Build the reference results (the solution's probe data, in build/grading-reference/) now. Optional: grading and
# the tests build a missing or stale one by themselves (about 3.5 min for all six on 2 cores).
grading-reference: $(DEV_STAMP)
	$(TEST_ENV) $(PY) -m instructor.grade reference $(or $(NB),00 01 02 03 04 05)

# Gradescope's autograder zip for one notebook: make gradescope NB=05 [OUT=build/autograder-05_vae.zip]
# (README, "Grading on Gradescope"). It grades with the same sandbox and hidden tests as `make grade`.
gradescope: $(DEV_STAMP)
	@test -n "$(NB)" || { echo "usage: make gradescope NB=05 [OUT=path/to/autograder.zip]"; exit 2; }
	$(PY) -m instructor.gradescope build $(NB) $(if $(OUT),--out $(OUT),) $(ARGS)

# The course website, student edition: what gets published (README, "Publishing the course website"). Installs
# requirements-site.txt into .venv first. Output: build/site/index.html.
SITE_STAMP := $(VENV)/.site-installed
$(SITE_STAMP): $(DEV_STAMP) requirements-site.txt
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-site.txt
	@touch $(SITE_STAMP)

site: $(SITE_STAMP)
	$(PY) -m instructor.site.build --edition student --out $(or $(OUT),build/site)

# The instructor edition (solutions with outputs and hidden tests, plus the student pages), for the course's staff
# only: NEVER publish it. Output: build/site-instructor/ (with DO-NOT-PUBLISH.txt; every page carries a banner).
site-instructor: $(SITE_STAMP)
	$(PY) -m instructor.site.build --edition instructor --out $(or $(OUT),build/site-instructor)

# Builds both editions into a temporary folder and checks every page (tests/site; about 2 minutes); screenshots of
# two pages: build/site-artifacts/.
test-site: $(SITE_STAMP)
	$(TEST_ENV) $(PY) -m pytest tests/site -v -p no:cacheprovider

clean-venv:
	rm -rf $(VENV)
