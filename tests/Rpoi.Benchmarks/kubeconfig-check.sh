#!/usr/bin/env bash
# Exercises 'phase-one --kubeconfig': starts the in-repo API server as a process of its own (CRDs installed), runs a
# small burst against it through a kubeconfig with --fake-nodes, and fails unless the run succeeds, the namespace and
# fake nodes it made are gone afterwards, and bad flags exit 2. Run from the repository after a Release build.
set -euo pipefail
B=tests/Rpoi.Benchmarks/bin/Release/net10.0/Rpoi.Benchmarks
KUBECTL=${RPOI_KUBECTL_135:-kubectl}
dir=$(mktemp -d)
mkfifo "$dir/in"
"$B" api-server "$dir/kubeconfig" < "$dir/in" > "$dir/server.out" &
server=$!
exec 3> "$dir/in"
trap 'exec 3>&-; wait $server || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 120); do grep -q ready "$dir/server.out" && break; sleep 0.5; done
grep -q ready "$dir/server.out" || { echo "FAIL: API server did not start"; exit 1; }
"$B" phase-one 20 4 0 2 --kubeconfig "$dir/kubeconfig" --fake-nodes --raw-writes 200 | tee "$dir/run.out"
grep -q "cleanup: namespace rpoi-bench-.* deleted, 20 fake nodes deleted" "$dir/run.out" || { echo "FAIL: no cleanup line"; exit 1; }
left=$("$KUBECTL" --kubeconfig "$dir/kubeconfig" get nodes -o name | grep -c rpoi-bench || true)
[ "$left" = 0 ] || { echo "FAIL: $left fake nodes left"; exit 1; }
"$KUBECTL" --kubeconfig "$dir/kubeconfig" get namespaces -o name | { grep rpoi-bench || true; } | while read -r ns; do
  phase=$("$KUBECTL" --kubeconfig "$dir/kubeconfig" get "$ns" -o jsonpath='{.status.phase}')
  [ "$phase" = Terminating ] || { echo "FAIL: $ns left ($phase)"; exit 1; }
done
set +e
"$B" phase-one 20 --kubeconfig "$dir/nope"; rc=$?
[ $rc = 2 ] || { echo "FAIL: missing kubeconfig exit $rc, not 2"; exit 1; }
"$B" phase-one 20 --fake-nodes; rc=$?
[ $rc = 2 ] || { echo "FAIL: --fake-nodes without --kubeconfig exit $rc, not 2"; exit 1; }
echo "PASS: phase-one --kubeconfig against the API server process"
