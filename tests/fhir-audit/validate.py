#!/usr/bin/env python3
"""Validates `vigie audit export --format fhir` output (NDJSON, one AuditEvent a line) with the
FHIR models of `fhir.resources` (R4B: its AuditEvent is R4's, unchanged in R4B), written by others.

Usage: validate.py FILE|-   Prints `valid: N AuditEvent resources`; exit status 1 with each
invalid line's number and pydantic's reasons otherwise, 2 when there is nothing to validate.
"""
import json
import sys

from fhir.resources.R4B.auditevent import AuditEvent

# The models check structure and datatypes, not value sets: the "required" bindings of R4's
# AuditEvent (http://hl7.org/fhir/R4/auditevent.html) are checked here.
REQUIRED = {
    "action": {"C", "R", "U", "D", "E"},
    "outcome": {"0", "4", "8", "12"},
}
NETWORK_TYPES = {"1", "2", "3", "4", "5"}


def bindings(data: dict) -> None:
    for field, allowed in REQUIRED.items():
        if field in data and data[field] not in allowed:
            raise ValueError(f"{field} {data[field]!r} is not in its required value set {sorted(allowed)}")
    for agent in data.get("agent", []):
        network = agent.get("network", {}).get("type")
        if network is not None and network not in NETWORK_TYPES:
            raise ValueError(f"agent.network.type {network!r} is not in its required value set")


def main(path: str) -> int:
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")
    valid, invalid = 0, 0
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if data.get("resourceType") != "AuditEvent":
                raise ValueError(f"resourceType is {data.get('resourceType')!r}, not AuditEvent")
            AuditEvent.model_validate(data)
            bindings(data)
            valid += 1
        except Exception as e:  # every reason, for every line
            invalid += 1
            print(f"line {number}: {e}", file=sys.stderr)
    if invalid:
        print(f"invalid: {invalid} of {valid + invalid} resources", file=sys.stderr)
        return 1
    if not valid:
        print("nothing to validate", file=sys.stderr)
        return 2
    print(f"valid: {valid} AuditEvent resources")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "-"))
