# One command each: `make run` (set up, open the app on the embedded simulator),
# `make test` (set up, run the whole test suite). Both create .venv from pyproject.toml,
# after tools/system-deps.sh has checked the Debian/Ubuntu packages they need (installing
# what is missing when run as root, otherwise printing the `sudo apt-get install` line).
# `make package` builds the desktop bundle dist/autotrader-desktop/ (build_app.spec),
# `make smoke` runs the built bundle end to end, `make install-desktop` adds it to the
# desktop's application menu.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGE_STAMP := $(VENV)/.installed-package
SYSTEM_DEPS := PYTHON=$(PYTHON) sh tools/system-deps.sh
# `make run` checks the window's packages too before setting up .venv (minutes, the first
# time), so a missing one is said at once.
FIRST_DEPS := $(if $(filter run,$(MAKECMDGOALS)),run,test)
APP := dist/autotrader-desktop/autotrader-desktop
# What the bundle is built from: `make smoke` rebuilds it when one of these is newer.
APP_SOURCES := build_app.spec pyproject.toml $(wildcard autotrader_desktop/*.py \
	autotrader_desktop/*/*.py algorithm/*.py resources/* resources/icons/* tools/*.py \
	tools/pyinstaller_hooks/*.py)

.PHONY: run test lint bench clean package smoke install-desktop icons

$(STAMP): pyproject.toml
	@$(SYSTEM_DEPS) $(FIRST_DEPS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	@$(SYSTEM_DEPS) run
	$(BIN)/autotrader-desktop

test: $(STAMP)
	@$(SYSTEM_DEPS) test
	$(BIN)/ruff check autotrader_desktop tests bench algorithm tools
	$(BIN)/lint-imports
	$(BIN)/mypy
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

$(PACKAGE_STAMP): $(STAMP)
	@$(SYSTEM_DEPS) package
	$(BIN)/python -m pip install --quiet -e '.[test,package]'
	touch $(PACKAGE_STAMP)

package: $(PACKAGE_STAMP)
	$(BIN)/pyinstaller --noconfirm --log-level WARN build_app.spec
	@touch $(APP)  # PyInstaller may keep the executable's old date; `make smoke` compares it
	@du -sh dist/autotrader-desktop

$(APP): $(PACKAGE_STAMP) $(APP_SOURCES)
	$(MAKE) package

smoke: $(APP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m bundle tests/e2e/test_bundle.py

install-desktop: $(APP)
	sh resources/install-desktop-entry.sh $(APP)

icons: $(STAMP)
	$(BIN)/python tools/render_icons.py

bench: $(STAMP)
	status=0; for b in bench/bench_*.py; do $(BIN)/python $$b || status=1; done; exit $$status

clean:
	rm -rf $(VENV) build dist
