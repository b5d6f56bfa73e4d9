"""Runs scim2-tester (a SCIM conformance library written by others) against a running Vigie.

Usage: check.py BASE_URL TOKEN CA_FILE [KNOWN_DISAGREEMENTS]. Prints one line per check and a
closing `N passed, N failed` line; exits non-zero when a check failed that the known
disagreements do not name, or when a disagreement named there no longer happens.
"""
import random
import sys

import scim2_tester.filling
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server


# The tester fills each attribute with a random value of its type (a UUID for a string) unless
# the attribute has examples. Vigie's idNat is a string with a format the schema language cannot
# state (RFC 7643 §7 has no pattern), which Vigie refuses when it is wrong, as it must: give it
# examples the way the library reads them, fresh RPPS-shaped values (8 + 11 digits).
_examples = scim2_tester.filling.get_random_example_value


def _with_idnat_examples(path):
    if str(path).endswith(":idNat"):
        return "8" + "".join(random.choice("0123456789") for _ in range(11))
    return _examples(path)


scim2_tester.filling.get_random_example_value = _with_idnat_examples


def known(path: str | None) -> list[tuple[str, str, str]]:
    if not path:
        return []
    rows = []
    for line in open(path):
        if line.strip() and not line.startswith("#"):
            title, text, why = line.rstrip("\n").split("\t")
            rows.append((title, text, why))
    return rows


def main() -> int:
    base, token, ca = sys.argv[1:4]
    disagreements = known(sys.argv[4] if len(sys.argv) > 4 else None)
    http = Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, verify=ca, timeout=60)
    client = SyncSCIMClient(http)
    # Every check: discovery, CRUD and PATCH on every resource type the server publishes, misc.
    results = check_server(client)
    passed = failed = skipped = 0
    seen = set()
    for r in results:
        line = f"{r.status.name:8} {r.title}"
        if r.resource_type:
            line += f" [{r.resource_type}]"
        if r.status in (Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE):
            passed += 1
        elif r.status == Status.SKIPPED:
            skipped += 1
        else:
            reason = str(r.reason or "")
            match = next((d for d in disagreements if d[0] == r.title and d[1] in reason), None)
            if match:
                seen.add(match)
                passed += 1
                line += f" (known disagreement: {match[2]})"
            else:
                failed += 1
                line += f": {reason}"
        print(line)
    for d in disagreements:
        if d not in seen:
            failed += 1
            print(f"STALE    {d[0]} {d[1]}: listed in the known disagreements but no longer happens")
    print(f"scim2-tester: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
