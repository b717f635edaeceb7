#!/usr/bin/env bash
# A/B of the decode GEMV: the working tree's quant kernels against those of an older revision, alternated in one JVM
# (the shared host's bandwidth drifts too much for separate runs to compare). Prints one line per config.
#   bench/run-ab.sh OLD_REV [FORMAT:K:N:THREADS:COLD ...]   (default configs: NF4_DQ and F32 at 768x3072, 3072x768)
#   A config FORMAT:K:N:THREADS:M:fwd|bwd (e.g. F32:3072:768:2:1024:fwd) times the GEMM of GemmBench instead;
#   FORMAT may be OLD_FMT/NEW_FMT (e.g. F32/NF4_DQ) to run a different format on each side.
#   AB_JVM_OPTS: extra JVM flags for the one JVM (e.g. -Dqlora.pageAlignedStreams=false).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/find-jdk.sh"
OLD="${1:?usage: bench/run-ab.sh OLD_REV [FORMAT:K:N:THREADS:COLD ...]}"
shift
CONFIGS=("$@")
[ ${#CONFIGS[@]} -gt 0 ] || CONFIGS=(NF4_DQ:768:3072:2:true NF4_DQ:3072:768:2:true F32:768:3072:2:true F32:3072:768:2:true)
cd "$ROOT"
mvn -B -q -o -DskipTests -pl quant,bench -am compile
WT="$(mktemp -d)"
trap 'git -C "$ROOT" worktree remove --force "$WT" >/dev/null 2>&1 || true' EXIT
git worktree add -q --detach "$WT" "$OLD"
(cd "$WT" && mvn -B -q -o -DskipTests -pl quant compile)
"$JAVA_HOME/bin/java" ${AB_JVM_OPTS:-} --add-modules jdk.incubator.vector -Drounds="${ROUNDS:-8}" -cp bench/target/classes \
  dev.qlora4j.bench.ab.AbDriver "$WT/quant/target/classes" "$ROOT/quant/target/classes" "$ROOT/bench/target/classes" \
  "${CONFIGS[@]}"
