"""scripts/check-metadata, parts (b) and (c), and the example configuration.

    python3 check_metadata.py example SCHEMA OUT      write the example configuration
    python3 check_metadata.py schema SCHEMA EXAMPLE   (b) Python's jsonschema (needs it)
    python3 check_metadata.py manifest MANIFEST       (c) the manifest and its logo (stdlib)

Messages start with "check-metadata: ok" or "check-metadata: FAIL"; the exit code is 1
when anything failed.
"""

import json
import re
import struct
import sys
from pathlib import Path

FAILURES = []


def ok(part, msg):
    print(f"check-metadata: ok ({part}) {msg}")


def fail(part, msg):
    FAILURES.append(msg)
    print(f"check-metadata: FAIL ({part}) {msg}", file=sys.stderr)


def load_json(part, path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        fail(part, f"{path}: not valid JSON: {err}")
        return None


# --- the example configuration ----------------------------------------------------------

# Sample values for variables whose meaning is known; others follow their schema.
KNOWN_SAMPLES = {
    "OPENCTI_URL": "http://opencti:8080",
    "OPENCTI_TOKEN": "ChangeMe",
    "CONNECTOR_ID": "2f4b1c4e-8a55-4c1e-9d55-3f1f0a6b7c21",
    "IVRE_MAX_TLP": "TLP:AMBER",
    "IVRE_DATA_DIR": "/data",
}


def sample_value(name, prop):
    """A value valid for `prop`: a known sample, else one of its own examples, its
    default, its first enum or const value, else one made from its type and format."""
    if name in KNOWN_SAMPLES and "enum" not in prop:
        return KNOWN_SAMPLES[name]
    if prop.get("examples"):
        return prop["examples"][0]
    if "default" in prop:
        return prop["default"]
    if "const" in prop:
        return prop["const"]
    if prop.get("enum"):
        return KNOWN_SAMPLES.get(name) if KNOWN_SAMPLES.get(name) in prop["enum"] else prop["enum"][0]
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    fmt = prop.get("format")
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return prop.get("minimum", 1)
    if kind == "array":
        item = sample_value(name, prop.get("items", {"type": "string"}))
        return [item]
    if kind == "object":
        return {}
    return {
        "uri": "http://localhost:8080",
        "password": "ChangeMe",
        "duration": "PT1H",
        "email": "someone@example.com",
        "date-time": "2026-01-01T00:00:00Z",
        "date": "2026-01-01",
        "uuid": KNOWN_SAMPLES["CONNECTOR_ID"],
    }.get(fmt, "ChangeMe")


def cmd_example(schema_path, out_path):
    schema = load_json("example", schema_path)
    if not isinstance(schema, dict):
        return
    props = schema.get("properties") or {}
    example = {}
    for name in schema.get("required") or []:
        example[name] = sample_value(name, props.get(name, {}))
    Path(out_path).write_text(json.dumps(example, indent=2) + "\n", encoding="utf-8")
    ok("example", f"example configuration: {json.dumps(example)}")


# --- (b) jsonschema ---------------------------------------------------------------------

ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def cmd_schema(schema_path, example_path):
    part = "jsonschema"
    try:
        import jsonschema
        from jsonschema import Draft202012Validator
    except ImportError as err:
        fail(part, f"Python's jsonschema is not installed: {err}")
        return
    schema = load_json(part, schema_path)
    example = load_json(part, example_path)
    if schema is None or example is None:
        return
    try:
        Draft202012Validator.check_schema(schema)
        ok(part, f"check_schema: valid draft 2020-12 schema (jsonschema {jsonschema_version()})")
    except jsonschema.exceptions.SchemaError as err:
        fail(part, f"check_schema: {err.message} at {'/'.join(map(str, err.absolute_path)) or '(root)'}")
        return
    declared = schema.get("$schema")
    if declared != "https://json-schema.org/draft/2020-12/schema":
        fail(part, f"$schema is {declared!r}, not draft 2020-12 as the connectors' schemas")
    checker = Draft202012Validator.FORMAT_CHECKER
    validator = Draft202012Validator(schema, format_checker=checker)
    errors = sorted(validator.iter_errors(example), key=lambda e: list(e.path))
    if errors:
        for err in errors:
            fail(part, f"example configuration: {err.message} at {'/'.join(map(str, err.path)) or '(root)'}")
    else:
        ok(part, "example configuration is valid (formats checked)")
    if schema.get("required") and not list(validator.iter_errors({})):
        fail(part, "an empty configuration is accepted although variables are required")

    # The conventions of the connectors' schemas (connector_config_schema.json).
    before = len(FAILURES)
    if schema.get("type") != "object":
        fail(part, f'top-level "type" is {schema.get("type")!r}, not "object"')
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        fail(part, '"properties" is missing or empty')
        props = {}
    if not isinstance(schema.get("required"), list):
        fail(part, '"required" is not a list (the platform copies it as an array)')
    if schema.get("additionalProperties") is not True:
        fail(part, '"additionalProperties" is not true (the connectors\' schemas accept extra variables)')
    for name in schema.get("required") or []:
        if name not in props:
            fail(part, f"required variable {name} has no property")
    for name, prop in props.items():
        if not ENV_NAME.match(name):
            fail(part, f"property {name!r} is not an environment variable name")
        if not isinstance(prop, dict):
            fail(part, f"property {name} is not an object")
            continue
        if "type" not in prop and "const" not in prop and "enum" not in prop:
            fail(part, f"property {name} has no type")
        if not prop.get("description"):
            fail(part, f"property {name} has no description")
        if prop.get("format") == "password" and prop.get("writeOnly") is not True:
            fail(part, f'property {name} has format "password" without "writeOnly": true')
        if "default" in prop:
            sub = Draft202012Validator({"properties": {name: prop}}, format_checker=checker)
            for err in sub.iter_errors({name: prop["default"]}):
                fail(part, f"default of {name} is invalid: {err.message}")
    for name in ("OPENCTI_URL", "OPENCTI_TOKEN"):
        if name not in props:
            fail(part, f"no property {name}")
    if len(FAILURES) == before:
        ok(part, f"{len(props)} properties follow the connectors' conventions (env var names, "
           "type, description, writeOnly passwords, valid defaults)")


def jsonschema_version():
    try:
        from importlib.metadata import version

        return version("jsonschema")
    except Exception:  # noqa: BLE001 - only for the message
        return "?"


# --- (c) the manifest -------------------------------------------------------------------

# The keys of the connectors repository's connector_manifest.json, in their order.
MANIFEST_KEYS = [
    "title", "slug", "description", "short_description", "logo", "use_cases",
    "solution_categories", "license_type", "contact", "verified", "last_verified_date",
    "playbook_supported", "max_confidence_level", "support_version", "subscription_link",
    "source_code", "manager_supported", "container_version", "container_image",
    "container_type",
]
# The vocabularies of the connectors repository's manifest schema.
USE_CASES = {
    "Adversary & Campaign Insights", "Vulnerability & Exploit Awareness",
    "Infrastructure & Attack Surface Visibility", "Detection & Response Enablement",
    "Fraud, Financial Crime & Cryptocurrency Monitoring",
    "Brand, Digital Risk & Underground Exposure", "Third-Party & Supply Chain Oversight",
    "Cloud, SaaS & Platform Security", "Geopolitical, Physical & Hybrid Risk Analysis",
    "Market Vertical & Mission-Specific Intelligence", "FIMI & Disinformation", "Other",
}
SOLUTION_CATEGORIES = {
    "Threat Intelligence Feed", "Endpoint Detection & Response", "SIEM & Security Analytics",
    "Malware Analysis & Sandbox", "SOAR & Security Automation",
    "Vulnerability & Exposure Management", "Attack Surface Management", "Network Security",
    "Email Security", "AI Security", "Incident Response & Case Management",
    "Digital Risk Protection", "Governance, Risk & Compliance", "Cloud Security",
    "Enrichment & Reputation", "Import, Export & Sharing", "Other",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) of a PNG, or None when the file is not one."""
    data = Path(path).read_bytes()
    if len(data) < 33 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    if not data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82"):
        return None
    return struct.unpack(">II", data[16:24])


def cmd_manifest(manifest_path):
    part = "manifest"
    m = load_json(part, manifest_path)
    if m is None:
        return
    if not isinstance(m, dict):
        fail(part, "the manifest is not a JSON object")
        return
    missing = [k for k in MANIFEST_KEYS if k not in m]
    extra = [k for k in m if k not in MANIFEST_KEYS]
    if missing:
        fail(part, f"missing keys: {', '.join(missing)}")
    if extra:
        fail(part, f"keys the connectors' manifests do not have: {', '.join(extra)}")

    def expect(key, cond, what):
        if key in m and not cond(m[key]):
            fail(part, f"{key} is {m[key]!r}: {what}")

    expect("slug", lambda v: v == "ivre", 'must be "ivre"')
    expect("title", lambda v: isinstance(v, str) and v.strip(), "must be a non-empty string")
    expect("description", lambda v: isinstance(v, str) and len(v) >= 100, "must be a paragraph")
    expect("short_description", lambda v: isinstance(v, str) and 0 < len(v) <= 200,
           "must be a string of at most 200 characters")
    expect("container_type", lambda v: v == "INTERNAL_ENRICHMENT", 'must be "INTERNAL_ENRICHMENT"')
    expect("manager_supported", lambda v: v is True, "must be true")
    expect("playbook_supported", lambda v: v is True, "must be true")
    expect("verified", lambda v: isinstance(v, bool), "must be a boolean")
    expect("max_confidence_level", lambda v: type(v) is int and 0 <= v <= 100,
           "must be an integer from 0 to 100")
    expect("support_version", lambda v: isinstance(v, str) and re.fullmatch(r">= ?\d+\.\d+\.\d+", v),
           'must be like ">=6.4.0"')
    expect("license_type", lambda v: v in ("Free", "Commercial"), 'must be "Free" or "Commercial"')
    expect("container_image", lambda v: v == f"opencti/connector-{m.get('slug')}",
           "must be opencti/connector-<slug>")
    expect("container_version", lambda v: v == "rolling", 'must be "rolling" (the release rewrites it)')
    expect("source_code", lambda v: isinstance(v, str) and re.match(r"https://", v), "must be an https URL")
    expect("subscription_link", lambda v: v is None or (isinstance(v, str) and re.match(r"https?://", v)),
           "must be null or a URL")
    expect("contact", lambda v: v is None or isinstance(v, str), "must be null or a string")
    expect("last_verified_date",
           lambda v: (v is None and not m.get("verified"))
           or (isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v)),
           "must be a YYYY-MM-DD date (required when verified)")
    for key, vocabulary in (("use_cases", USE_CASES), ("solution_categories", SOLUTION_CATEGORIES)):
        expect(key, lambda v: isinstance(v, list) and 1 <= len(v) <= 3 and len(set(v)) == len(v),
               "must list 1 to 3 distinct values")
        if isinstance(m.get(key), list):
            for value in m[key]:
                if value not in vocabulary:
                    fail(part, f"{key}: {value!r} is not in the connectors' vocabulary")
    slug = m.get("slug")
    expect("logo", lambda v: v == f"internal-enrichment/{slug}/__metadata__/logo.png",
           "must be internal-enrichment/<slug>/__metadata__/logo.png")
    logo = Path(manifest_path).parent / "logo.png"
    if not logo.is_file():
        fail(part, f"{logo} does not exist")
    else:
        size = png_size(logo)
        if size is None:
            fail(part, f"{logo} is not a complete PNG file")
        elif size[0] != size[1] or size[0] < 96:
            fail(part, f"{logo} is {size[0]}x{size[1]}: it must be square, at least 96 px")
        else:
            ok(part, f"{logo} is a {size[0]}x{size[1]} PNG")
    if not FAILURES:
        ok(part, f"{manifest_path}: {len(m)} keys, slug {slug!r}, {m.get('container_type')}, "
           f"manager_supported, playbook_supported, support_version {m.get('support_version')!r}")


def main(argv):
    commands = {"example": (cmd_example, 2), "schema": (cmd_schema, 2), "manifest": (cmd_manifest, 1)}
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 != commands[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    func, _ = commands[argv[1]]
    func(*argv[2:])
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
