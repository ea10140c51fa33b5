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

.PHONY: venv lab test lint unit nbval test-grading test-browser release execute-solutions bench bench-grading grade grading-reference gradescope site test-site clean-venv

venv: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	@# Make `import utils` work from any notebook folder inside this venv.
	$(PY) -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'vae_course.pth').write_text(str(pathlib.Path.cwd()) + '\n')"
	@# No "fetch Jupyter news?" prompt and no update check when a student opens the course.
	$(PY) -c "import json, pathlib, sys; p = pathlib.Path(sys.prefix, 'share/jupyter/lab/settings/overrides.json'); p.parent.mkdir(parents=True, exist_ok=True); p.write_text(json.dumps({'@jupyterlab/apputils-extension:notification': {'fetchNews': 'false', 'checkForUpdates': False}}, indent=1))"
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
	$(TEST_ENV) $(PY) -m pytest tests --ignore=tests/browser --ignore=tests/site -m "not corpus"

# The full grading corpus (tests marked `corpus`): every solution notebook full marks, every student version 0,
# the exploit corpus and the answer attacks on 02, 04 and 05, each graded for real in the sandbox. About 13 minutes on
# 2 cores; .ci/run runs it.
test-grading: $(DEV_STAMP)
	$(TEST_ENV) $(PY) -m pytest tests/grading tests/test_gradescope.py -m corpus -p no:cacheprovider --durations=10

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
# Extra options (see `python -m instructor.grade --help`) go in ARGS, e.g. ARGS="--workers 4 --cell-timeout 600".
grade: $(DEV_STAMP)
	@test -n "$(NB)" -a -n "$(SUB)" || { echo "usage: make grade NB=05 SUB=path/to/submissions [OUT=grades/05]"; exit 2; }
	$(PY) -m instructor.grade $(NB) $(SUB) --out $(or $(OUT),grades/$(NB)) $(ARGS)

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
	$(PY) -m instructor.gradescope $(NB) $(if $(OUT),--out $(OUT),) $(ARGS)

# The course website: executed instructor notebooks and student notebooks, in lecture order (README, "The course
# website"). Installs requirements-site.txt into .venv first. Output: build/site/index.html.
SITE_STAMP := $(VENV)/.site-installed
$(SITE_STAMP): $(DEV_STAMP) requirements-site.txt
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-site.txt
	@touch $(SITE_STAMP)

site: $(SITE_STAMP)
	$(PY) -m instructor.site.build --out $(or $(OUT),build/site)

# Builds the site into a temporary folder and checks every page (tests/site; about a minute).
test-site: $(SITE_STAMP)
	$(TEST_ENV) $(PY) -m pytest tests/site -v -p no:cacheprovider

clean-venv:
	rm -rf $(VENV)
