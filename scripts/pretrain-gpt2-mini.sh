#!/usr/bin/env bash
# Reproduces the built-in model models/gpt2-mini: a 17.7M-parameter GPT-2 (6 layers, 256 wide, 8 heads, 256 positions,
# GPT-2 tokenizer) pre-trained from scratch by qlora4j's full-parameter training on ../shared/data/corpus and
# WikiText-2's valid split; WikiText-2's test split is held out for evaluation.
#
#   bash scripts/pretrain-gpt2-mini.sh [WORK_DIR]      (default /tmp/gpt2-mini-pretrain; ~2 h on 2 cores)
#
# Resumable: run it again after an interruption (Ctrl-C saves a checkpoint) and it continues from the newest one.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/gpt2-mini-pretrain}
DATA=../shared/data
mkdir -p "$WORK"

[ -f "$WORK/init/config.json" ] || ./qlora init --tokenizer "$DATA/tiny-gpt2" --out "$WORK/init" --seed 1234 \
    --n-layer 6 --n-embd 256 --n-head 8 --n-positions 256

RESUME=()
if ls -d "$WORK"/run/checkpoint-* >/dev/null 2>&1; then RESUME=(--resume "$WORK/run"); fi
./qlora train --full --model "$WORK/init" \
    --data "$DATA/corpus,$DATA/wikitext-2/wiki.valid.raw" --eval-data "$DATA/wikitext-2/wiki.test.raw" \
    --batch 8 --seq 256 --steps 800 --lr 1e-3 --schedule cosine --warmup 50 --weight-decay 0.1 --clip 1.0 \
    --seed 1234 --eval-every 100 --eval-batches 8 --save-every 100 --save-total-limit 2 --log-every 10 \
    --save-dtype bf16 --out "$WORK/run" "${RESUME[@]}"

# the final model (bf16) and its perplexity on the held-out WikiText-2 test split
./qlora eval --model "$WORK/run" --data "$DATA/wikitext-2/wiki.test.raw"
echo "model: $WORK/run (copy config.json, model.safetensors and the tokenizer files to models/gpt2-mini)"
