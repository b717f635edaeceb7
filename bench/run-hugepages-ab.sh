#!/usr/bin/env bash
# End-to-end A/B of huge pages for the loader's weights: InferenceBench on one model, alternating
# -Dqlora.hugePages=true and false (the order flips every round), one JSON-derived line per run.
#   bench/run-hugepages-ab.sh MODEL_DIR EMBEDDING_DTYPE ROUNDS [InferenceBench flags, e.g. --no-mmap]
# Needs bench/target/benchmarks.jar (mvn -B -q -o -DskipTests -pl bench -am package).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/find-jdk.sh"
MODEL="${1:?usage: bench/run-hugepages-ab.sh MODEL_DIR EMBEDDING_DTYPE ROUNDS [flags]}"
EMB="${2:?embedding dtype}"
ROUNDS="${3:?rounds}"
shift 3
cd "$ROOT"
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="true false"; else order="false true"; fi
  for h in $order; do
    "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx4g \
      -Dqlora.hugePages="$h" -cp bench/target/benchmarks.jar dev.qlora4j.bench.e2e.InferenceBench "$MODEL" \
      --embedding-dtype "$EMB" "$@" 2>/dev/null | python3 -c "import json,sys
d=json.loads(sys.stdin.read())
print('$(basename "$MODEL") hugePages=$h', ' '.join('%s=%s' % (k, d[k]) for k in ['pp_tok_s','tg_tok_s','buffer_read_gb_s',
  'model_read_gb_s','of_bound','of_bound_paired','tg_after_prompt_tok_s','peak_rss_mib']))"
  done
done
