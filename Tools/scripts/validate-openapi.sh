#!/usr/bin/env bash
# Validates Schemas/openapi.yaml (or the file given) against the OpenAPI 3.1 specification.
# Installs openapi-spec-validator from PyPI when it is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
spec="${1:-$root/Schemas/openapi.yaml}"
python="${PYTHON:-python3}"

if ! "$python" -c "import openapi_spec_validator" >/dev/null 2>&1; then
    echo "installing openapi-spec-validator" >&2
    "$python" -m pip install --quiet --disable-pip-version-check openapi-spec-validator >&2 \
        || "$python" -m pip install --quiet --disable-pip-version-check --break-system-packages openapi-spec-validator >&2
fi

"$python" - "$spec" <<'PY'
import sys
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

path = sys.argv[1]
spec, _ = read_from_filename(path)
version = str(spec.get("openapi", ""))
if not version.startswith("3.1"):
    sys.exit(f"{path}: expected an OpenAPI 3.1 document, found openapi: {version or 'nothing'}")
validate(spec)
print(f"{path}: valid OpenAPI {version}")
PY
