#!/bin/bash
# The HR feed of 10,000 people on a release build (issue 17's figure): the first run (10,000
# joiners), the same file again (no change) and a run where 1 % move unit; wall time and peak
# resident memory of each `vigie users feed` (GNU time), on the embedded demo's SQLite directory.
#   cargo build --release -p vigie-gateway && gateway/server/benches/hr-feed.sh [N] [VIGIE]
set -euo pipefail
n=${1:-10000}
vigie=${2:-target/release/vigie}
[ -x "$vigie" ] || { echo "no $vigie: build it with cargo build --release -p vigie-gateway" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time is missing: apt-get install time" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$n" "$work" <<'PY'
import sys
n, work = int(sys.argv[1]), sys.argv[2]
cols = "matricule,family_name,given_name,birth_date,metier,grade,idnat,units,username,start_date,end_date,sponsor,kind"
def feed(moved):
    rows = (f"H{i:05},Nom{i},Prénom{i},1980-01-01,Infirmier,IDE,,{'UF7002' if i <= moved else 'UF7001'}:100,"
            f"hr.p{i},2020-01-01,,,staff" for i in range(1, n + 1))
    return cols + "\n" + "\n".join(rows) + "\n"
open(f"{work}/first.csv", "w").write(feed(0))
open(f"{work}/movers.csv", "w").write(feed(n // 100))
PY
"$vigie" migrate --data-dir "$work/data" >/dev/null
run() {
  local label=$1 file=$2
  /usr/bin/time -f "%e %M" -o "$work/time" "$vigie" users feed "$file" --json --data-dir "$work/data" > "$work/out.json" 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r secs kib < "$work/time"
  local counts
  counts=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("result"), {k: len(v) if isinstance(v, list) else v for k, v in d.get("diff", {}).items()})' "$work/out.json" 2>/dev/null || echo "?")
  printf '%-28s %7.2f s  peak %6.1f MiB  %s\n' "$label" "$secs" "$(echo "$kib/1024" | bc -l)" "$counts"
}
echo "HR feed of $n people ($("$vigie" --version 2>/dev/null || echo vigie))"
run "first run ($n joiners)" "$work/first.csv"
run "same file again" "$work/first.csv"
run "1 % movers ($((n / 100)))" "$work/movers.csv"
