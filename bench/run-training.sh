#!/usr/bin/env bash
# End-to-end LoRA training benchmark (issue 4): GPT-2 124M-shaped random model with an NF4+DQ base, LoRA r=8 on
# c_attn/c_proj/c_fc, no dropout on either side (--no-base-dropout, --pdrop 0), at batch 4 × seq 256 and batch 1 × seq 1024; qlora4j and the PyTorch
# peer (../shared/peers/torch_gpt2_lora_bench.py, fp32) alternate. qlora4j's tokens/s is the median of the steps after
# the first (JIT warm-up); peak RSS is the process's VmHWM. qlora4j runs with the launcher's JVM flags (QLORA_JVM_FLAGS
# from scripts/find-jdk.sh), as ./qlora train would.
#   bench/run-training.sh [steps=4] [models-dir=/tmp/qlora-bench] [extra qlora train flags...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/find-jdk.sh"
STEPS="${1:-4}"
MODELS="${2:-/tmp/qlora-bench}"
if [ $# -ge 2 ]; then shift 2; else set --; fi
cd "$ROOT"
[ -f bench/target/benchmarks.jar ] || mvn -B -q -DskipTests -pl bench -am package
[ -f cli/target/qlora.jar ] || mvn -B -q -DskipTests -pl cli -am package
"$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector -cp bench/target/benchmarks.jar dev.qlora4j.bench.e2e.PrepareModels "$MODELS" 2>/dev/null
MODEL="$MODELS/gpt2-124m-nf4"
for f in vocab.json merges.txt tokenizer.json tokenizer_config.json special_tokens_map.json; do
  [ -f "$MODEL/$f" ] || cp "../shared/data/tiny-gpt2/$f" "$MODEL/"
done
DATA=/tmp/qlora-bench/wikitext-valid.txt
[ -f "$DATA" ] || cp ../shared/data/wikitext-2/wiki.valid.raw "$DATA"
run_qlora() { # batch seq
  local out="/tmp/qlora-bench/train-$1x$2"
  "$JAVA_HOME/bin/java" $QLORA_JVM_FLAGS \
    -jar cli/target/qlora.jar train --model "$MODEL" --data "$DATA" --batch "$1" --seq "$2" --steps "$STEPS" \
    --lora-r 8 --lora-alpha 16 --lora-dropout 0 --no-base-dropout --target-modules c_attn,c_proj,c_fc --eval-split 0 --save-every 0 \
    --out "$out" --overwrite "${@:3}" >"$out.log" 2>&1
  python3 - "$out" "$1" "$2" <<'PY'
import json, statistics, sys
out, b, t = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = [json.loads(l) for l in open(out + "/metrics.jsonl") if l.strip()]
tps = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r][1:]
import re
rss = float(re.search(r"peak RSS ([0-9.]+) MiB", open(out + ".log").read()).group(1))
print(json.dumps({"impl": "qlora4j nf4+dq", "batch": b, "seq": t, "steps_measured": len(tps),
                  "tokens_per_s": round(statistics.median(tps), 1), "peak_rss_mib": round(rss)}))
PY
}
run_torch() { # batch seq
  /usr/bin/python3 ../shared/peers/torch_gpt2_lora_bench.py --mode lora --dtype fp32 --batch "$1" --seq "$2" \
    --threads 2 --pdrop 0 --lora-dropout 0 --steps 3 --warmup 1 || true
}
for shape in "4 256" "1 1024"; do
  run_qlora $shape "$@"
  if /usr/bin/python3 -c 'import torch' 2>/dev/null; then run_torch $shape; fi
done
