#!/usr/bin/env bash
# llama.cpp side by side with qlora4j on this machine (issue 3: "NF4+DQ prompt processing ≥ 1.0× llama.cpp Q4_0"):
# the same random GPT-2 124M weights (bench/run-inference.sh's $MODELS/gpt2-124m-f32) written as GGUF by
# bench/peers/llamacpp/gpt2_to_gguf.py (ggml's own Q4_0 code, from the gguf wheel), timed by llama.cpp's own
# llama-bench (pp512, tg128), alternating round by round with InferenceBench on the matching qlora4j model so both
# see the same host. One JSON line per run (llama-bench's -o jsonl for the peer).
#   bench/run-llamacpp-peer.sh [rounds=3] [models-dir=/tmp/qlora-bench]
# llama.cpp's source: no internet here, so it comes from npm — node-llama-cpp 3.21.1 ships llama.cpp as a git bundle
# (llama/gitRelease.bundle); the first run builds llama-bench from it with -DGGML_NATIVE=ON (as a user builds
# llama.cpp for their own CPU; about 12 minutes on 2 cores) into $MODELS/llama.cpp.
# PAIRS (default "nf4:q4_0 f32:f32"): qlora4j format : GGUF linear type. The embeddings (and so the tied head) are
# f16 on both sides for the quantized pair (qlora4j's generate/eval default for a 4-bit model) and f32 for f32.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/find-jdk.sh"
ROUNDS="${1:-3}"
MODELS="${2:-/tmp/qlora-bench}"
PEER="$ROOT/bench/peers/llamacpp"
THREADS="${THREADS:-2}"
cd "$ROOT"
need() { command -v "$1" >/dev/null || { echo "run-llamacpp-peer.sh: needs $1 ($2)" >&2; exit 1; }; }
need npm "to fetch node-llama-cpp, whose package carries llama.cpp's source"
need cmake "to build llama-bench"; need g++ "to build llama-bench"; need python3 "to write the GGUF files"
LLAMA_BENCH="$MODELS/llama.cpp/build/bin/llama-bench"
if [ ! -x "$LLAMA_BENCH" ]; then
  [ -d "$PEER/node_modules/node-llama-cpp" ] || (cd "$PEER" && npm ci --ignore-scripts --no-audit --no-fund >&2)
  rm -rf "$MODELS/llama.cpp"
  git clone -q "$PEER/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$MODELS/llama.cpp" 2>/dev/null
  # AMX: on the AMX-capable Xeon of session 18 the native build's AMX Q4_0 path (ggml-cpu/amx) segfaulted in
  # tensor_traits::compute_forward on the first prompt (gdb backtrace in bench/RESULTS.md), so where the CPU
  # reports amx_tile the build is native minus AMX, which is what a user there gets to run.
  noamx=""; grep -qw amx_tile /proc/cpuinfo && noamx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  cmake -S "$MODELS/llama.cpp" -B "$MODELS/llama.cpp/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    ${noamx:+"-DCMAKE_C_FLAGS=$noamx" "-DCMAKE_CXX_FLAGS=$noamx"} \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF >&2
  cmake --build "$MODELS/llama.cpp/build" --target llama-bench -j "$(nproc)" >&2
fi
PYDEPS="$MODELS/.pydeps"
if ! PYTHONPATH="$PYDEPS" python3 -c 'import gguf, numpy' 2>/dev/null; then
  wheel=$(ls /opt/pypi/files/gguf-*.whl 2>/dev/null | tail -1 || true)
  python3 -m pip install -q --no-deps --target "$PYDEPS" "${wheel:-gguf}" >&2
fi
[ -f bench/target/benchmarks.jar ] || mvn -B -q -DskipTests -pl bench -am package
JAVA=("$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx4g -cp bench/target/benchmarks.jar)
"${JAVA[@]}" dev.qlora4j.bench.e2e.PrepareModels "$MODELS" >&2 2>/dev/null
PAIRS="${PAIRS:-nf4:q4_0 f32:f32}"
emb_of() { [ "$1" = f32 ] && echo f32 || echo f16; }
for pair in $PAIRS; do
  lin="${pair#*:}"; emb=$(emb_of "$lin"); gguf="$MODELS/gpt2-124m-$lin-emb$emb.gguf"
  [ -f "$gguf" ] || PYTHONPATH="$PYDEPS" python3 "$PEER/gpt2_to_gguf.py" "$MODELS/gpt2-124m-f32" \
    ../shared/data/gpt2-tokenizer "$gguf" --linear "$lin" --embedding "$emb"
done
for r in $(seq 1 "$ROUNDS"); do
  for pair in $PAIRS; do
    fmt="${pair%%:*}"; lin="${pair#*:}"; emb=$(emb_of "$lin")
    "${JAVA[@]}" dev.qlora4j.bench.e2e.InferenceBench "$MODELS/gpt2-124m-$fmt" --prompt 512 --decode 128 --repeats 3 \
      --embedding-dtype "$emb" 2>/dev/null
    "$LLAMA_BENCH" -m "$MODELS/gpt2-124m-$lin-emb$emb.gguf" -p 512 -n 128 -t "$THREADS" -r 3 -o jsonl 2>/dev/null \
      | python3 -c 'import json,sys
for l in sys.stdin:
    d=json.loads(l); t="pp%d"%d["n_prompt"] if d["n_prompt"] else "tg%d"%d["n_gen"]
    print(json.dumps({"peer":"llama.cpp llama-bench "+d["build_commit"],"model":d["model_filename"].split("/")[-1],
      "type":d["model_type"],"threads":d["n_threads"],"test":t,"tok_s":round(d["avg_ts"],1),
      "samples":[round(x,1) for x in d["samples_ts"]]}))'
  done
done
