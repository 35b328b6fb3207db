#!/usr/bin/env bash
# Fetch EXIficient, the EXI oracle of tests/integration/test_exi_exificient.py: the jar inside
# the iso15118 wheel on PyPI (Apache-2.0), into .cache/EXICodec.jar. The tests need a Java
# runtime too (Debian: default-jre-headless).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache
if [ -f .cache/EXICodec.jar ]; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python -m pip download --quiet --no-deps --dest "$tmp" "iso15118==0.31.2"
python - "$tmp" <<'PY'
import sys, zipfile, pathlib
wheel = next(pathlib.Path(sys.argv[1]).glob("iso15118-*.whl"))
with zipfile.ZipFile(wheel) as z:
    pathlib.Path(".cache/EXICodec.jar").write_bytes(z.read("iso15118/shared/EXICodec.jar"))
PY
