#!/usr/bin/env bash
# End-to-end inference benchmark (issue 3): GPT-2 124M-shaped random model, llama-bench style: prompt processing of
# 512 tokens (pp512) and decode of 128 from an empty cache (tg128), plus decode of 128 right after the prompt,
# for F32, BF16, INT8 (LLM.int8) and NF4+DQ, each in its own JVM so peak RSS is per format; then the
# PyTorch peer (fp32) when Debian's python3-torch is installed. Prints one JSON line per run.
#   bench/run-inference.sh [repeats=3] [models-dir=/tmp/qlora-bench]
# MODES="mmap no-mmap" runs each format both ways, one after the other (--no-mmap: weights copied to private memory
# at load, as llama.cpp --no-mmap); the default is mmap only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/find-jdk.sh"
REPEATS="${1:-3}"
MODELS="${2:-/tmp/qlora-bench}"
cd "$ROOT"
[ -f bench/target/benchmarks.jar ] || mvn -B -q -DskipTests -pl bench -am package
JAVA=("$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx4g -cp bench/target/benchmarks.jar)
"${JAVA[@]}" dev.qlora4j.bench.e2e.PrepareModels "$MODELS" 2>/dev/null
MODES="${MODES:-mmap}"
# the embeddings (and tied LM head) as qlora generate / eval hold them by default (--embedding-dtype auto: f16 for the
# quantized int8 and nf4 models, as transformers loads a 4/8-bit model), then nf4 once more with its fp32 head as stored
for run in f32 bf16 int8 nf4 nf4:as-stored; do
  fmt="${run%%:*}"; emb=auto; [ "$run" != "$fmt" ] && emb="${run#*:}"
  for mode in $MODES; do
    flag=(); [ "$mode" = no-mmap ] && flag=(--no-mmap)
    "${JAVA[@]}" dev.qlora4j.bench.e2e.InferenceBench "$MODELS/gpt2-124m-$fmt" --prompt 512 --decode 128 \
      --repeats "$REPEATS" --embedding-dtype "$emb" "${flag[@]}" 2>/dev/null
  done
done
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  /usr/bin/python3 ../shared/peers/torch_gpt2_lora_bench.py --mode infer --dtype fp32 --batch 1 --seq 512 --threads 2 --last-logits || true
fi
