PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
SYSCONFDIR ?= /etc
# The installed daemon's own venv. Built on the system Python: a Python under /root or
# /home is invisible to the system unit (ProtectHome=yes).
APPDIR ?= $(LIBDIR)/musique
INSTALL_PYTHON ?= $(firstword $(wildcard /usr/bin/python3) $(PYTHON))
UNITDIR ?= $(LIBDIR)/systemd/system
USERUNITDIR ?= $(LIBDIR)/systemd/user
MANDIR ?= $(PREFIX)/share/man
BUILDDIR ?= build/install
# Exact versions and hashes (make lock): what an install runs on, and what the tests run on.
LOCK := requirements.lock
TEST_LOCK := requirements-test.lock
LOCK_FLAGS := --generate-hashes --python-version 3.11 --no-header --quiet

# The suite runs on several workers (pytest-xdist): every test has its own directory, ports
# and daemon; a file's tests run on one worker (loadfile), so a daemon or browser a module
# shares starts once and the session's journald is started by one worker.
# Three workers a core, at most 8: most tests spend their time waiting on a daemon, a browser
# or a pipe. Files are handed out in the order tests/conftest.py gives (the long tests'
# files first): xdist would otherwise hand out the files with the most tests first, leaving
# a long file of one or two tests to run alone at the end.
PYTEST_WORKERS ?= -n $(shell n=$$(( 3 * $$(nproc) )); echo $$(( n > 8 ? 8 : n ))) --dist loadfile \
	--no-loadscope-reorder
# test-clock: the tests where the time of day could matter, with the clock five minutes past
# midnight UTC (Debian's faketime: installed if missing, as root).
CLOCK_TESTS ?= tests/test_tracker.py tests/test_import_jobs.py tests/test_tracker_service.py tests/test_importer_service.py

.PHONY: venv test test-clock lint test-tools demo install install-app install-units install-config install-man man lock clean bench

# The dependencies from the lock file (hashes checked), then the project itself, editable.
$(BIN)/musiqued: pyproject.toml $(TEST_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r $(TEST_LOCK)
	$(BIN)/pip install -q --no-deps -e .
	touch $@

venv: $(BIN)/musiqued

# requirements.lock: what an install needs (with the notify and uvloop extras);
# requirements-test.lock: that, plus the test extra, at the same versions. Pins already in
# the files are kept unless pyproject.toml asks otherwise: `make lock UPGRADE=--upgrade`
# moves everything to the newest allowed.
lock: venv
	$(BIN)/uv pip compile pyproject.toml --extra notify --extra uvloop $(LOCK_FLAGS) $(UPGRADE) -o $(LOCK)
	$(BIN)/uv pip compile pyproject.toml --extra test $(LOCK_FLAGS) $(UPGRADE) -c $(LOCK) -o $(TEST_LOCK)

# The man pages, from the click commands and etc/musiqued.toml (committed: installing needs
# no generator; tests/test_man_pages.py checks they are up to date).
man: venv
	$(BIN)/python man/generate.py

lint: venv
	$(BIN)/ruff check musiqued musiquectl tests
	$(BIN)/ruff format --check musiqued musiquectl tests
	$(BIN)/mypy

# Programs the tests drive: Chromium and its WebDriver (the Settings page), dbus-daemon
# (desktop notifications), groff and man (the man pages), faketime (its libfaketime jumps a
# daemon's wall clock), gdb (holds musiquectl where a Ctrl-C lands just before a wait).
# Installed with apt-get when missing and run as root; otherwise the exact packages to
# install are printed (the tests then fail under CI=true, skip elsewhere).
TEST_TOOLS := chromium:chromium chromedriver:chromium-driver dbus-daemon:dbus-daemon \
	groff:groff-base man:man-db faketime:faketime gdb:gdb

test-tools:
	@missing=""; for pair in $(TEST_TOOLS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing the test tools:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else \
	    echo "the browser, notification, clock-jump and Ctrl-C timing tests need:$$missing (sudo apt-get install$$missing)" >&2; \
	  fi; \
	fi

test: lint test-tools
	$(BIN)/pytest -q $(PYTEST_WORKERS)

test-clock: venv
	@command -v faketime >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && apt-get install -y -qq faketime >/dev/null; } \
	  || { echo 'make test-clock needs faketime: apt-get install faketime' >&2; exit 1; }
	faketime -f "@$$(date -u -d tomorrow +%F) 00:05:00" $(BIN)/python -m pytest -q $(PYTEST_WORKERS) $(CLOCK_TESTS)

demo: venv
	$(BIN)/python -m musiqued.sim.demo

# Each bench prints its figures beside their floors and exits 1 if one does not hold; all run.
bench: venv
	status=0; for b in tests/bench/*_bench.py; do $(BIN)/python $$b || status=1; done; exit $$status

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache

# `make install` = install-app install-units install-config install-man, then (as root, on a
# live systemd, without DESTDIR) sysusers, tmpfiles and daemon-reload.
# install-app: a self-contained venv in $(APPDIR) (the dependencies from $(LOCK), hashes
# checked, then the project's wheel), its console scripts linked into $(BINDIR). With
# DESTDIR it is built in the staging tree and its paths rewritten to the final ones.
# install-units: the units with ExecStart= pointing at $(BINDIR), and the sysusers.d/tmpfiles.d
# snippets. install-config: the example configuration, never overwriting one that is already
# there. install-man: the man pages into $(MANDIR).
install: install-app install-units install-config install-man
	@if [ -z '$(DESTDIR)' ] && [ "$$(id -u)" = 0 ] && [ -d /run/systemd/system ]; then \
	  systemd-sysusers '$(LIBDIR)/sysusers.d/musique.conf'; \
	  systemd-tmpfiles --create '$(LIBDIR)/tmpfiles.d/musique.conf'; \
	  systemctl daemon-reload; \
	  echo 'installed; start with: systemctl enable --now musiqued.socket musiqued.service'; \
	fi

install-app:
	@case "$$(readlink -f $(INSTALL_PYTHON))" in /root/*|/home/*) \
	  echo "warning: $(INSTALL_PYTHON) lives under /root or /home, which the system unit cannot see (ProtectHome=yes); use INSTALL_PYTHON=/usr/bin/python3.11 or similar" >&2;; esac
	rm -rf '$(BUILDDIR)/wheels'
	$(INSTALL_PYTHON) -m pip wheel -q --no-deps --no-build-isolation -w '$(BUILDDIR)/wheels' . 2>/dev/null \
	  || $(INSTALL_PYTHON) -m pip wheel -q --no-deps -w '$(BUILDDIR)/wheels' .
	rm -rf '$(DESTDIR)$(APPDIR)'
	$(INSTALL_PYTHON) -m venv --without-pip '$(DESTDIR)$(APPDIR)'
	$(INSTALL_PYTHON) -m pip --python '$(DESTDIR)$(APPDIR)/bin/python' install -q --no-compile \
	  --no-warn-script-location --require-hashes -r $(LOCK)
	$(INSTALL_PYTHON) -m pip --python '$(DESTDIR)$(APPDIR)/bin/python' install -q --no-compile \
	  --no-warn-script-location --no-deps '$(BUILDDIR)'/wheels/*.whl
	if [ -n '$(DESTDIR)' ]; then \
	  grep -rlI --null -F '$(DESTDIR)$(APPDIR)' '$(DESTDIR)$(APPDIR)/bin' '$(DESTDIR)$(APPDIR)/pyvenv.cfg' \
	    | xargs -0 -r sed -i 's|$(DESTDIR)$(APPDIR)|$(APPDIR)|g'; \
	fi
	'$(DESTDIR)$(APPDIR)/bin/python' -m compileall -q -j 0 -s '$(DESTDIR)' -p / '$(DESTDIR)$(APPDIR)/lib' >/dev/null
	install -d '$(DESTDIR)$(BINDIR)'
	for script in musiqued musiquectl; do ln -sfn '$(APPDIR)/bin/'$$script '$(DESTDIR)$(BINDIR)/'$$script; done

install-units:
	install -d '$(DESTDIR)$(UNITDIR)' '$(DESTDIR)$(USERUNITDIR)' '$(BUILDDIR)'
	for unit in musiqued.service musiqued.socket; do \
	  sed 's|/usr/local/bin/musiqued|$(BINDIR)/musiqued|g; s|/etc/musique/|$(SYSCONFDIR)/musique/|g' \
	    systemd/$$unit > '$(DESTDIR)$(UNITDIR)/'$$unit; \
	  sed 's|/usr/local/bin/musiqued|$(BINDIR)/musiqued|g' systemd/user/$$unit > '$(DESTDIR)$(USERUNITDIR)/'$$unit; \
	  chmod 0644 '$(DESTDIR)$(UNITDIR)/'$$unit '$(DESTDIR)$(USERUNITDIR)/'$$unit; \
	done
	sed 's|/usr/local/bin/musiquectl|$(BINDIR)/musiquectl|g' systemd/user/musique-notify.service \
	  > '$(DESTDIR)$(USERUNITDIR)/musique-notify.service'
	chmod 0644 '$(DESTDIR)$(USERUNITDIR)/musique-notify.service'
	install -D -m 0644 systemd/musique.sysusers '$(DESTDIR)$(LIBDIR)/sysusers.d/musique.conf'
	sed 's|/etc/musique/|$(SYSCONFDIR)/musique/|g' systemd/musique.tmpfiles > '$(BUILDDIR)/musique.tmpfiles'
	install -D -m 0644 '$(BUILDDIR)/musique.tmpfiles' '$(DESTDIR)$(LIBDIR)/tmpfiles.d/musique.conf'

install-man:
	install -D -m 0644 man/musiquectl.1 '$(DESTDIR)$(MANDIR)/man1/musiquectl.1'
	install -D -m 0644 man/musiqued.8 '$(DESTDIR)$(MANDIR)/man8/musiqued.8'
	install -D -m 0644 man/musiqued.toml.5 '$(DESTDIR)$(MANDIR)/man5/musiqued.toml.5'

install-config:
	install -D -m 0644 etc/musiqued.toml '$(DESTDIR)$(PREFIX)/share/doc/musique/musiqued.toml.example'
	install -D -m 0644 README.md '$(DESTDIR)$(PREFIX)/share/doc/musique/README.md'
	install -d -m 0755 '$(DESTDIR)$(SYSCONFDIR)/musique'
	if [ -e '$(DESTDIR)$(SYSCONFDIR)/musique/musiqued.toml' ]; then \
	  echo 'keeping the existing $(SYSCONFDIR)/musique/musiqued.toml'; \
	else \
	  install -m 0640 etc/musiqued.toml '$(DESTDIR)$(SYSCONFDIR)/musique/musiqued.toml'; \
	fi
