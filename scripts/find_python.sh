#!/usr/bin/env bash
# Print the path of a working CPython X.Y: python3.Y on PATH, else a pyenv build (~/.pyenv/versions/X.Y.*).
# A candidate counts only if it runs and says it is X.Y (a pyenv shim for a version that is not selected exists
# on PATH but fails). Usage: scripts/find_python.sh 3.12   (exits 1, saying so, when the machine has none)
set -euo pipefail
version=$1
is_version() {
  [ -x "$1" ] && [ "$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$version" ]
}
candidates=("$(command -v "python$version" 2>/dev/null || true)")
candidates+=("${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python"$version")
for candidate in "${candidates[@]}"; do
  if [ -n "$candidate" ] && is_version "$candidate"; then
    echo "$candidate"
    exit 0
  fi
done
echo "no working Python $version on this machine (python$version on PATH or ~/.pyenv/versions/$version.*)" >&2
exit 1
