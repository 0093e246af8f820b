"""Validates STIX bundles the way the integration tests need.

Usage: validate_stix.py FILE...   (each file holds one bundle per line)

Every bundle must pass the OASIS stix2-validator (STIX 2.1; OpenCTI's `x_opencti_*`
custom properties allowed) and parse with the stix2 library (allow_custom). Prints one
line per problem and exits 1 if there is any.
"""

import json
import sys

import stix2
from stix2validator import ValidationOptions, validate_instance


def main(paths):
    options = ValidationOptions(version="2.1", strict=False)
    problems = 0
    bundles = 0
    warnings = 0
    for path in paths:
        with open(path, encoding="utf-8") as fdesc:
            for lineno, line in enumerate(fdesc, 1):
                if not line.strip():
                    continue
                bundles += 1
                where = f"{path}:{lineno}"
                bundle = json.loads(line)
                result = validate_instance(bundle, options)
                if not result.is_valid:
                    problems += 1
                    for err in result.errors:
                        print(f"{where}: {err}")
                warnings += len(result.warnings or [])
                try:
                    stix2.parse(bundle, allow_custom=True)
                except Exception as exc:  # the library raises many types
                    problems += 1
                    print(f"{where}: stix2.parse: {exc}")
    # Warnings are expected: deterministic (UUIDv5) ids and OpenCTI's x_opencti_*
    # custom properties, both as pycti produces them.
    print(f"{bundles} bundle(s), {problems} problem(s), {warnings} warning(s)")
    return 1 if problems or not bundles else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
