#!/usr/bin/env bash
# Installs what is needed, builds repd, and runs every test: unit tests, integration tests
# against real daemons with libnbd, and the shell tests with real NBD clients and the kernel
# block stack (nbdfuse + loop + LVM + ext4). Exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh
echo "== build"
swift build 2>&1 | tail -3
export REPD_BIN="$PWD/.build/debug/repd"
export REPD="$REPD_BIN"
echo "== swift test (unit and libnbd integration tests)"
swift_status=0
swift test > /tmp/repd-swift-test.log 2>&1 || swift_status=$?
grep -E "error:|failed \(|XCTSkip|skipped" /tmp/repd-swift-test.log | head -40 || true
grep -E "^Test Suite 'All tests'|Executed [0-9]+ test" /tmp/repd-swift-test.log | tail -3 || true
echo "== shell tests (real clients, kernel stack)"
shell_status=0
bash tests/run-all.sh || shell_status=$?
if [ "$swift_status" -ne 0 ] || [ "$shell_status" -ne 0 ]; then
  echo "FAILED: swift test exit $swift_status, shell tests exit $shell_status (full swift log: /tmp/repd-swift-test.log)"
  exit 1
fi
echo "all tests passed"
