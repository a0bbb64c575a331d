#!/usr/bin/env bash
# Every test wgseg has, in one command (`npm run test:all`, after `bash scripts/setup.sh --browser`): the embedded
# shaders are up to date, the typecheck is clean, the vitest suite (Node, Dawn), the same engine in Deno and in
# headless Chromium, and the package as users install it (test/package/run.ts: its tarball in a fresh project, used
# from Node, Deno, TypeScript and npx). Adds up the tests of all parts (a failed shader check or typecheck counts as one failed test)
# and always ends with the line `tests: N passed, M failed`; exits non-zero when M > 0.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
report=()

# count <part> <passed> <failed> <seconds>
count() {
  passed=$((passed + $2))
  failed=$((failed + $3))
  report+=("$(printf '%-10s %4d passed, %d failed  (%ds)' "$1" "$2" "$3" "$4")")
}

# A part that either passes or fails as a whole.
check() { # check <part> <command...>
  local part=$1 start=$SECONDS
  shift
  echo "== $part: $*"
  if "$@"; then count "$part" 1 0 $((SECONDS - start)); else count "$part" 0 1 $((SECONDS - start)); fi
}

# A runner that ends with `<part>: N passed, M failed`; no such line (it crashed) counts as one failed test.
runner() { # runner <part> <npm script>
  local part=$1 start=$SECONDS log out
  echo "== $part: npm run $2"
  log=$(mktemp)
  npm run --silent "$2" 2>&1 | tee "$log"
  out=$(grep -E "^$part: [0-9]+ passed, [0-9]+ failed$" "$log" | tail -1)
  rm -f "$log"
  if [[ $out =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    count "$part" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" $((SECONDS - start))
  else
    count "$part" 0 1 $((SECONDS - start))
  fi
}

check shaders npx tsx scripts/embed-shaders.ts --check
check typecheck npx tsc --noEmit -p .

echo "== vitest: npx vitest run"
start=$SECONDS
rm -f .vitest-results.json
npx vitest run
vitest_status=$?
# vitest.config.ts writes the JSON report; a file that fails to load shows only as a failed suite, and a crash
# leaves no report: both count as failures too.
read -r v_passed v_failed < <(node -e '
  const fs = require("fs");
  try {
    const r = JSON.parse(fs.readFileSync(".vitest-results.json", "utf8"));
    const broken = process.argv[1] !== "0" && r.numFailedTests === 0 ? Math.max(1, r.numFailedTestSuites) : 0;
    console.log(r.numPassedTests, r.numFailedTests + broken);
  } catch {
    console.log(0, 1);
  }' "$vitest_status")
count vitest "$v_passed" "$v_failed" $((SECONDS - start))

runner deno test:deno
runner package test:package
runner browser test:browser
runner app test:app

echo
printf '%s\n' "${report[@]}"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
