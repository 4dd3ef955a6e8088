#!/usr/bin/env bash
# Idempotent set-up of the PyFlink job's own environment (kept out of the main .venv:
# apache-flink pins pyarrow 16.1 / numpy / pandas that would hold the engine back).
#
#   INV360_FLINK_VENV  (default ~/.cache/inventory360/flink-venv)  apache-flink==2.2.1, cassandra-driver
#   INV360_FLINK_LIB   (default ~/.cache/inventory360/flink-lib)   connector jars (pom.xml)
#   INV360_FLINK_PYTHON  interpreter for the venv (default: python3.11, else python3)
#
# Each part is skipped while its marker matches what it was built from (the pinned
# requirement / the pom's SHA-256), so a second run takes well under a second.
# Prints the two paths as shell assignments on the last lines (eval-able).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${INV360_FLINK_VENV:-$HOME/.cache/inventory360/flink-venv}
lib=${INV360_FLINK_LIB:-$HOME/.cache/inventory360/flink-lib}
req="apache-flink==2.2.1"

say() { echo "flink-setup: $*" >&2; }

# -- the venv ---------------------------------------------------------------------------
if [[ -f $venv/.complete && $(<"$venv/.complete") == "$req" ]]; then
  :
else
  py=${INV360_FLINK_PYTHON:-}
  if [[ -z $py ]]; then
    for c in python3.11 python3.12 python3.10 python3; do
      if command -v "$c" >/dev/null 2>&1; then py=$c; break; fi
    done
  fi
  say "creating $venv with $py ($req; first run downloads ≈ 300 MB)"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  "$venv/bin/python" -m pip install -q "$req" >&2
  "$venv/bin/python" -c 'import pyflink, pyflink.version as v; print(v.__version__)' >&2
  echo "$req" >"$venv/.complete"
fi

# -- Python packages the job's workers import (besides inventory360 itself, shipped as python.files):
# the Cassandra driver for the projection, same version as the main environment's.
extras="cassandra-driver==3.30.1"
if [[ ! -f $venv/.extras || $(<"$venv/.extras") != "$extras" ]]; then
  say "installing $extras into $venv"
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pip install -q $extras >&2
  "$venv/bin/python" -c 'import cassandra.cluster' >&2
  echo "$extras" >"$venv/.extras"
fi

# -- connector jars ---------------------------------------------------------------------
pom=$here/pom.xml
hash=$(sha256sum "$pom" | cut -c1-64)
if [[ -f $lib/.complete && $(<"$lib/.complete") == "$hash" ]]; then
  :
else
  command -v mvn >/dev/null 2>&1 || { say "maven is missing (apt-get install maven)"; exit 1; }
  say "resolving connector jars into $lib"
  rm -rf "$lib"
  mkdir -p "$lib"
  mlog=$(mktemp)
  if ! mvn -B -ntp -f "$pom" -Dlib.dir="$lib" package >"$mlog" 2>&1; then
    tail -40 "$mlog" >&2
    exit 1
  fi
  rm -f "$mlog"
  echo "$hash" >"$lib/.complete"
fi

echo "INV360_FLINK_VENV=$venv"
echo "INV360_FLINK_LIB=$lib"
