#!/usr/bin/env bash
# The one way Python code is generated from protos/.
#   scripts/gen_protos.sh          regenerate into services/
#   scripts/gen_protos.sh --check  fail when the committed code is stale
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${XINFANG_PYTHON:-$root/.venv/bin/python}

gen() { # $1: output dir
  local out=$1
  mapfile -t files < <(cd "$root/protos" && find xinfang -name '*.proto' | sort)
  PATH="$(dirname "$py"):$PATH" "$py" -m grpc_tools.protoc -I "$root/protos" \
    --python_out="$out" --mypy_out="$out" \
    --grpc_python_out="$out" --mypy_grpc_out="$out" \
    "${files[@]}"
  # generated packages need __init__.py for mypy and setuptools
  find "$out/xinfang" -type d -path '*/v1' | while read -r d; do
    touch "$d/__init__.py"
  done
}

list_generated() { # $1: dir
  (cd "$1" && find xinfang -path '*/v1/*' \( -name '*_pb2*.py' -o -name '*_pb2*.pyi' -o -name '__init__.py' \) | sort)
}

if [[ "${1:-}" == "--check" ]]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/xinfang"
  gen "$tmp"
  if ! diff <(list_generated "$tmp") <(list_generated "$root/services") >/dev/null; then
    echo "generated protobuf code is stale (file set differs): run scripts/gen_protos.sh" >&2
    diff <(list_generated "$tmp") <(list_generated "$root/services") >&2 || true
    exit 1
  fi
  while read -r f; do
    if ! cmp -s "$tmp/$f" "$root/services/$f"; then
      echo "generated protobuf code is stale: services/$f; run scripts/gen_protos.sh" >&2
      exit 1
    fi
  done < <(list_generated "$tmp")
  echo "generated protobuf code is up to date"
else
  find "$root/services/xinfang" -path '*/v1/*' \( -name '*_pb2*.py' -o -name '*_pb2*.pyi' \) -delete
  gen "$root/services"
  echo "generated: $(list_generated "$root/services" | wc -l) files"
fi
