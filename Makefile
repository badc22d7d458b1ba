# Two commands: `make lab` (start the course) and `make test` (run every test).
# `make start` copies the exercises into my-exercises/ (yours; never overwritten) to work in.
# Both create .venv and install the project when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LAB_ARGS ?=
# Jupyter refuses to start as root (containers, CI machines) unless told it is intended.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test install exercises start clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,cluster]"
	$(BIN)/python -m ipykernel install --sys-prefix --name nclib --display-name "Python (nclib)" >/dev/null
	@touch $(STAMP)

install: $(STAMP)

LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
LAB_SERVER   := $(VENV)/etc/jupyter/jupyter_server_config.d/nclib.json

# The course's JupyterLab settings (jupyter/README.md), applied inside .venv only.
$(LAB_SETTINGS): jupyter/overrides.json $(STAMP)
	@mkdir -p $(@D) && cp $< $@
$(LAB_SERVER): jupyter/jupyter_server_config.json $(STAMP)
	@mkdir -p $(@D) && cp $< $@

lab: $(STAMP) $(LAB_SETTINGS) $(LAB_SERVER)
	$(BIN)/jupyter lab lectures/00_overview.ipynb --notebook-dir=. $(ROOT_FLAG) $(LAB_ARGS)

test: $(STAMP)
	$(BIN)/nclib exercises check
	$(BIN)/python -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env tests lectures solutions

exercises: $(STAMP)
	$(BIN)/nclib exercises build

start: $(STAMP)
	$(BIN)/nclib exercises start

clean-venv:
	rm -rf $(VENV)
