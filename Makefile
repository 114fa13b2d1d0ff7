# ferlib book: the two commands of the README.
#   make book   set up .venv if needed, execute every chapter (smoke profile), build _build/html
#   make test   set up .venv if needed, run the unit tests and nbval over the committed notebooks
# Variables: PYTHON (the interpreter that creates .venv), VENV, BOOK_ARGS (extra runner
# options, e.g. make book BOOK_ARGS="--profile cpu").

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BOOK_ARGS ?=
# Unit tests + nbval in one pytest run (one summary line). Only cells marked
# "# NBVAL_CHECK_OUTPUT" are compared (--nbval-lax); tests/nbval_sanitize.cfg blanks timings,
# paths, addresses and progress bars; the kernel is this environment's Python.
PYTEST_ARGS ?= tests notebooks --nbval-lax --nbval-current-env \
	--nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=600

.PHONY: setup book test clean

setup: $(VENV)/.ferlib-installed

# The library with every extra (book, lab, test, site), each package at the version pinned in
# constraints.txt (torch==2.14.1, ...). Re-installs only when pyproject.toml or the pins change.
$(VENV)/.ferlib-installed: pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -c constraints.txt -e ".[all]"
	@touch $@

book: setup
	$(PY) -m ferlib.book --profile smoke $(BOOK_ARGS)

test: setup
	@MPLBACKEND=Agg $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5): tests/ or notebooks/ is empty?"; exit 1; fi; \
	exit $$rc

clean:
	rm -rf _build
