# Sourced by scripts/test, scripts/demo and scripts/upgrade. Makes .venv/ hold exactly what
# uv.lock says (the hub, its runtime and its test tools, every file checked against its hash),
# installed by uv, which is itself pinned by hash in scripts/uv-requirements.txt. Needs python3
# (>= 3.11) with venv, and PyPI. Nothing is installed when .venv already matches the lock.
PYTHON=${PYTHON:-python3}
UV_HOME=.tools/uv
UV="$UV_HOME/bin/uv"
uv_wanted=$(sed -n 's/^uv==\([^ ]*\).*/\1/p' scripts/uv-requirements.txt)
if [ ! -x "$UV" ] || [ "$("$UV" --version | cut -d' ' -f2)" != "$uv_wanted" ]; then
  echo "setup: installing uv $uv_wanted into $UV_HOME (pinned by hash in scripts/uv-requirements.txt)" >&2
  rm -rf "$UV_HOME"
  "$PYTHON" -m venv "$UV_HOME"
  "$UV_HOME/bin/python" -m pip install -q --disable-pip-version-check --require-hashes \
    -r scripts/uv-requirements.txt
fi
# Never a Python downloaded behind the operator's back: the machine's own, as given.
export UV_PYTHON_DOWNLOADS=never UV_PYTHON="$PYTHON"
if ! "$UV" sync --locked --check --quiet >/dev/null 2>&1; then
  echo "setup: installing the versions in uv.lock into .venv (a first install takes a minute)" >&2
  # --locked: refuse, rather than re-resolve, when pyproject.toml and uv.lock disagree.
  "$UV" sync --locked
fi
