#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine: a virtualenv with the package (its
# data path compiled by Cython when a C compiler and Python's headers are there, setup.py) and,
# with --with-binaries, the real Prometheus, Alertmanager and docker-compose the tests drive, and
# the compiler and headers, since the tests check the compiled build.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--with-binaries" ]]; then
  missing=()
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  command -v cc >/dev/null || missing+=(gcc libc6-dev)
  python3 -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || missing+=(python3-dev)
  if ((${#missing[@]})); then
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    echo "installing Debian packages: ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  extras=".[test]"
else
  extras="."
fi

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
# constraints.txt pins the versions the tests were written against (golden files, observed dialects).
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e "$extras"
