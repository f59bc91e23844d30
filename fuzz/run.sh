#!/usr/bin/env bash
# Runs every fuzz target in turn (one process, one core each), minimises its corpus and
# writes bench/results/fuzz.json. Called by `make fuzz`; see fuzz/README.md.
#   FUZZ_RUNS     executions per target (default 10,000,000)
#   FUZZ_SECONDS  cap on each target's time, seconds (default 0: no cap)
#   FUZZ_TARGETS  targets to run (default: all of fuzz/Cargo.toml)
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${FUZZ_RUNS:-10000000}
seconds=${FUZZ_SECONDS:-0}
out=bench/results/fuzz.json
fuzz=(cargo +nightly fuzz)
# The decoders are safe Rust: coverage guidance is what finds bugs, and without
# AddressSanitizer each target runs about twice as fast. Overflow checks and debug
# assertions stay on (cargo-fuzz's default).
flags=(--sanitizer none)

if ! "${fuzz[@]}" --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
targets=${FUZZ_TARGETS:-$("${fuzz[@]}" list)}
"${fuzz[@]}" build "${flags[@]}"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
entries=()
failed=0
for target in $targets; do
  corpus=fuzz/corpus/$target
  mkdir -p "$corpus" "fuzz/artifacts/$target"
  crashes_before=$(find "fuzz/artifacts/$target" -type f | wc -l)
  start=$(date +%s.%N)
  status=0
  "${fuzz[@]}" run "${flags[@]}" "$target" "$corpus" -- \
    -runs="$runs" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
    -rss_limit_mb=2048 >"$logs/$target.log" 2>&1 || status=$?
  end=$(date +%s.%N)
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target.log" | tail -n 1)
  crashes=$(( $(find "fuzz/artifacts/$target" -type f | wc -l) - crashes_before ))
  if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    failed=1
    echo "fuzz: $target failed (exit $status, $crashes new crash files in fuzz/artifacts/$target):"
    grep -E -A8 'panicked|ERROR: libFuzzer' "$logs/$target.log" | head -n 20 || true
  fi
  "${fuzz[@]}" cmin "${flags[@]}" "$target" "$corpus" >"$logs/$target.cmin.log" 2>&1
  files=$(find "$corpus" -type f | wc -l)
  bytes=$(find "$corpus" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
  elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}')
  rate=$(awk -v n="${executions:-0}" -v t="$elapsed" 'BEGIN {printf "%.0f", (t > 0 ? n / t : 0)}')
  echo "fuzz: $target: ${executions:-0} executions in ${elapsed}s (${rate}/s), corpus $files files, $bytes bytes, $crashes crashes"
  printf '%s %s %s %s %s %s\n' "$target" "${executions:-0}" "$elapsed" "$files" "$bytes" "$crashes" >>"$logs/results"
done

# Targets not run this time keep their last numbers.
mkdir -p bench/results
python3 - "$out" "$logs/results" "$runs" "$seconds" "$(nproc)" "$(rustc +nightly --version)" <<'PY'
import json, os, sys
out, results, runs, seconds, cores, toolchain = sys.argv[1:]
old = json.load(open(out)).get("targets", {}) if os.path.exists(out) else {}
for line in open(results):
    target, executions, elapsed, files, size, crashes = line.split()
    executions, elapsed = int(executions), float(elapsed)
    old[target] = {
        "executions": executions, "seconds": elapsed,
        "executions_per_second": round(executions / elapsed) if elapsed else 0,
        "runs_asked": int(runs), "seconds_cap": int(seconds),
        "corpus_files": int(files), "corpus_bytes": int(size), "crashes": int(crashes),
    }
report = {
    "machine": f"{cores} cores; one libFuzzer process per target, one target at a time",
    "toolchain": toolchain, "sanitizer": "none (safe Rust; overflow checks and debug assertions on)",
    "targets": dict(sorted(old.items())),
}
with open(out, "w") as f:
    json.dump(report, f, indent=2)
    f.write("\n")
PY
echo "fuzz: wrote $out"
exit "$failed"
