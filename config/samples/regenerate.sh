#!/usr/bin/env bash
# Regenerates the signed samples in this directory: lease.yaml (E(m) in spec.request), rating-renter.yaml
# (E(m'') in spec.signedRating), rating-leaser.yaml and identities.json (the public keys of the throwaway
# renter, leaser and escrow that signed them; their private keys are never written anywhere).
#
# `kubectl rpoi demo` runs one whole RPOI lifecycle in-process and writes what each party signed, with the
# same code `kubectl rpoi request` and `kubectl rpoi rate` use. A signed request is bound to its namespace,
# name, leaser, escrow and time, so these files illustrate the format; a live operator refuses them (wrong
# leaser, and older than 24 h). For a Lease your cluster accepts, sign your own: see docs/quickstart.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet run --project operator/Rpoi.Cli -- demo --samples-dir config/samples -n team-a >/dev/null
# Keep the identities table in README.md in step (SamplesTests fails when it drifts).
mapfile -t addresses < <(sed -n 's/.*"address": "\(rpoi1[a-z0-9]*\)".*/\1/p' config/samples/identities.json)
mapfile -t keyids < <(sed -n 's/.*"keyId": "\([0-9a-f]*\)".*/\1/p' config/samples/identities.json)
i=0
for party in "renter R" "leaser β" "escrow π"; do
  sed -i "s/^| ${party} | .*/| ${party} | \`${addresses[$i]}\` | \`${keyids[$i]}\` |/" config/samples/README.md
  i=$((i + 1))
done
echo "regenerated config/samples/{lease,rating-renter,rating-leaser}.yaml and identities.json"
