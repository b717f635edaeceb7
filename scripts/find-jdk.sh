# Sourced by ./qlora, ./run-tests and the bench scripts: sets JAVA_HOME to a JDK >= 25 or exits.
# Order: $JAVA_HOME if it is >= 25, then the newest JDK >= 25 under /usr/lib/jvm (and /opt, ~/.sdkman).
qlora_jdk_major() { # prints the feature version of the JDK at $1, or nothing
  local rel="$1/release"
  [ -x "$1/bin/java" ] && [ -x "$1/bin/javac" ] || return 0
  if [ -f "$rel" ]; then
    sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$rel"
  else
    "$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1
  fi
}
qlora_find_jdk() {
  local cand best="" bestv=0 v
  if [ -n "${JAVA_HOME:-}" ]; then
    v=$(qlora_jdk_major "$JAVA_HOME")
    if [ -n "$v" ] && [ "$v" -ge 25 ]; then echo "$JAVA_HOME"; return 0; fi
  fi
  for cand in /usr/lib/jvm/* /opt/java/* /opt/jdk* "$HOME"/.sdkman/candidates/java/*; do
    [ -d "$cand" ] || continue
    v=$(qlora_jdk_major "$cand")
    if [ -n "$v" ] && [ "$v" -ge 25 ] && [ "$v" -gt "$bestv" ]; then best="$cand"; bestv="$v"; fi
  done
  [ -n "$best" ] && echo "$best"
}
QLORA_JDK=$(qlora_find_jdk)
if [ -z "$QLORA_JDK" ]; then
  echo "qlora4j needs a JDK 25 or newer (javac and java) and found none: JAVA_HOME=${JAVA_HOME:-<unset>}, nothing >= 25 under /usr/lib/jvm." >&2
  echo "Install one (for example Temurin 25: apt-get install temurin-25-jdk, or unpack a JDK 25 and set JAVA_HOME to it) and run again." >&2
  exit 3
fi
export JAVA_HOME="$QLORA_JDK"
export PATH="$JAVA_HOME/bin:$PATH"
if ! command -v mvn >/dev/null 2>&1; then
  echo "qlora4j builds with Apache Maven and found no 'mvn' on PATH: install it (apt-get install maven) and run again." >&2
  exit 3
fi
# Heap kept close to what is live: training allocates its buffers once and next to nothing per step, so a grown heap
# and young generation only inflate the resident set. The serial collector (what the JVM itself picks on small
# machines) with a fixed 64 MB young generation and tight free ratios: LoRA on GPT-2 124M NF4, 4 x 256, peak RSS
# 2.1 GiB with the default G1, 1.0-1.04 GiB with a tuned G1 (its own structures take ~55 MB), 0.87-0.88 GiB with this
# (bench/RESULTS.md). Steady-state training allocates almost nothing, so collections are rare either way.
# A collector chosen in QLORA_JAVA_OPTS replaces these (the JVM refuses two collectors).
QLORA_GC_FLAGS="-XX:+UseSerialGC -Xmn64m -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=20"
case " ${QLORA_JAVA_OPTS:-} " in *" -XX:+Use"*GC" "*) QLORA_GC_FLAGS="" ;; esac
QLORA_JVM_FLAGS="--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED $QLORA_GC_FLAGS"
