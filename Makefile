# R2DDE virtuel — the two commands of the README bootstrap .venv themselves.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export FLWR_TELEMETRY_ENABLED := 0
export HF_HUB_OFFLINE := 1

.PHONY: demo autodiag similaires test lint bench venv clean

$(BIN)/r2dde: pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU torch first: a plain `torch` requirement would otherwise pull a CUDA build of several GB.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/r2dde

demo: venv
	$(BIN)/r2dde simulate --scenario usecase1 --sites 3 --rounds 3 --epsilon 3 --out runs/demo
	@echo "Service d'autodiagnostic sur le modèle de cette étude (s'il passe sa porte d'équité) :"
	@echo "  make autodiag    # = $(BIN)/r2dde autodiag serve --study runs/demo --port 8080, puis http://127.0.0.1:8080/"
	@echo "Profils similaires (table DP publiée avec l'étude, ~1 min) : make similaires, puis make autodiag"

# The autodiagnostic web service on the demo's released model (refuses a model that failed its gate).
autodiag: venv
	$(BIN)/r2dde autodiag serve --study runs/demo --port 8080

# The released DP table of similar profiles the service reads (a granted statistics study, run once;
# a person's request never asks the partners anything). Sortants de formation, synthetic partners.
similaires: venv
	$(BIN)/r2dde simulate --scenario usecase3 --sites 2 --people 20000 --out runs/demo-formations
	$(BIN)/r2dde query autodiag/queries/profils_similaires.yaml --data runs/demo-formations/data \
		--out runs/demo/profils-similaires

test: venv
	$(BIN)/python -m pytest -q

# Rules as code: ruff on everything, mypy --strict on the production packages ([tool.mypy] in pyproject).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# Benchmarks are run by hand (minutes each); results land in benchmarks/results/.
bench: venv
	$(BIN)/python benchmarks/federated/adult_federated.py
	$(BIN)/python benchmarks/federated/usecase1_anchor.py

clean:
	rm -rf runs .pytest_cache
