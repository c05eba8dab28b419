# Sourced by scripts/run and scripts/test: make .venv with Python >= 3.11 and install the project into it.
# $1: the pip extras to install ("" or "[test]").
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py=${PYTHON:-python3}
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "call-api needs Python 3.11 or newer as '$py' (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi
if [ ! -x "$root/.venv/bin/python" ]; then
    if ! "$py" -m venv "$root/.venv" 2>/dev/null; then
        rm -rf "$root/.venv"
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            "$py" -m venv "$root/.venv"
        else
            echo "'$py -m venv' failed: install the venv module (Debian: sudo apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
fi
"$root/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root$1"
