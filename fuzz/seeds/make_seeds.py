#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from tests/data.

Run from the repository root: `python3 fuzz/seeds/make_seeds.py`. Needs Python 3 and, for
the signed JWTs of the `callback` target, the `cryptography` package. The `codec` seeds are
made afterwards by running the `normalize` target over its corpus (scripts/fuzz --seed).
The corpora in the repository are these seeds plus what fuzzing added, minimized with
`cargo fuzz cmin`.
"""
import base64
import hashlib
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def lines(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".json"):
        return [json.dumps(json.loads(text), separators=(",", ":"))]
    return [l for l in text.splitlines() if l.strip()]


# normalize: selector byte (0 scans, 1 view, 2 passive; RecordKind::ALL) + one line.
KINDS = {
    "ivre-0.9.20/scancli.jsonl": 0,
    "ivre-0.9.20/mongo-scancli.jsonl": 0,
    "ivre-0.9.20/scan2db-test.jsonl": 0,
    "ivre-0.9.20/web-scans-host.ndjson": 0,
    "ivre-0.9.20/mongo-raw-host.json": 0,
    "ivre-0.9.20/view.jsonl": 1,
    "ivre-0.9.20/mongo-view.jsonl": 1,
    "ivre-0.9.20/mongo-raw-view.json": 1,
    "ivre-0.9.20/ipinfo.jsonl": 2,
    "ivre-0.9.20/mongo-ipinfo.jsonl": 2,
    "ivre-0.9.20/mongo-raw-passive.json": 2,
    "ivre-0.9.20/mongo-raw-passive-ssl.json": 2,
    "extra/passive-extra.jsonl": 2,
    "extra/scans-extra.jsonl": 0,
    "extra/malformed.jsonl": 0,
}
for name, kind in KINDS.items():
    for line in lines(os.path.join(DATA, name)):
        put("normalize", bytes([kind]) + line.encode())
for extra in ['{"addr":"192.0.2.1","starttime":{"$date":{"$numberLong":"9000000000000000000"}}}',
              '{"addr_0":-1,"addr_1":-1,"recontype":"DNS_ANSWER","firstseen":1e300}',
              '{"addr":3221225985,"ports":[{"port":80,"state_reason_ip":"::1"}]}']:
    for kind in range(3):
        put("normalize", bytes([kind]) + extra.encode())

# observable
for s in ["ipv4-addr:192.0.2.10", "192.0.2.10", "ipv6-addr:2001:db8::53", "::ffff:192.0.2.1",
          "domain-name:www.example.com", "example.com", "Exa\u00efmple.COM.", "xn--bcher-kva.example",
          "mac-addr:00:11:22:aa:bb:cc", "00-11-22-AA-BB-CC", "autonomous-system:AS64497", "AS64497",
          "64497", "x509-certificate:sha256:" + "ab" * 32, "sha1:" + "01" * 20, "md5:" + "ff" * 16,
          "0300.0000.0002.0012", "192.0.2.256", "192.0.2", "foo:bar", "a..b", "-a.b", "a" * 64 + ".com"]:
    put("observable", s)

# mongo_url
for s in ["mongodb:///ivre", "mongodb://db.example:27017", "mongodb://",
          "mongodb://h1:27017,h2:27018/scans2024?replicaSet=rs0",
          "mongodb://h/ivre?colname_hosts=nmap2&maxtime=2500&readPreference=secondary&colname_passive=p",
          "documentdb://u:p4ss@docdb.example:27017/ivre?tls=true",
          "mongodb+srv://cluster.example/ivre",
          "mongodb://ivre%40corp:s3cr%3At@db.example/ivre?authSource=admin&tlsCertificateKeyFilePassword=k3yp4ss#frag",
          "mongodb:///ivre?colname_views=system.users", "mongodb:///ivre?maxtime=soon&maxscan=1"]:
    put("mongo_url", s)

# geo: selector (0 tests/data/geoip, 1 MaxMind test files, 2 none) + 4 or 16 bytes or text.
import ipaddress
for sel in range(3):
    for a in ["192.0.2.1", "198.51.100.7", "203.0.113.9", "1.1.1.1", "81.2.69.142", "89.160.20.112",
              "10.0.0.1", "127.0.0.1", "255.255.255.255"]:
        put("geo", bytes([sel]) + ipaddress.ip_address(a).packed)
    for a in ["2001:218::1", "2a02:cf40::1", "::ffff:192.0.2.1", "::1", "2001:db8::1", "fe80::1",
              "::81.2.69.142"]:
        put("geo", bytes([sel]) + ipaddress.ip_address(a).packed)
    put("geo", bytes([sel]) + b"::ffff:203.0.113.9")

# message
MESSAGES = [
    {"internal": {"work_id": "work_1", "applicant_id": "user-1"},
     "event": {"entity_id": "ipv4-addr--1", "entity_type": "IPv4-Addr",
               "stix_entity": json.dumps({"type": "ipv4-addr", "id": "ipv4-addr--1", "value": "192.0.2.1",
                                          "object_marking_refs": ["marking-definition--1"]}),
               "stix_objects": "[]"}},
    {"internal": {"playbook": {"playbook_id": "p", "execution_id": "e", "step_id": "s",
                               "execution_start": "2026-01-01T00:00:00Z", "data_instance_id": "d"}},
     "event": {"entity_id": "domain-name--1", "bundle": {"type": "bundle", "id": "bundle--1", "objects": [
         {"type": "domain-name", "id": "domain-name--1", "value": "example.com"}]}}},
    {"event": {"entity_id": "ipv4-addr--2"}},
    {"internal": {"work_id": "w", "draft_id": "draft"}, "event": {"stix_entity": "   "}},
    {"internal": {}, "event": {"stix_entity": "{not json"}},
]
for m in MESSAGES:
    put("message", json.dumps(m))

# callback: AUTHORIZATION "\n" BODY
TOKEN = "connector-token-0123456789"
KEY_A = "MC4CAQAwBQYDK2VwBCIEIHvvrI6EgAJxZN+3d7X4FzQlVV+EjbCMbu8Elw70cRvO"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(header, claims):
    from cryptography.hazmat.primitives.serialization import load_der_private_key
    key = load_der_private_key(base64.b64decode(KEY_A), None)
    signing = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode())
    return signing + "." + b64u(key.sign(signing.encode()))


good = {"iss": "opencti", "sub": "connector", "iat": 1764979200, "exp": 4102444800}
tokens = ["Bearer " + TOKEN, "bearer  " + TOKEN + " ", "Basic " + TOKEN, "Bearer "]
try:
    tokens += [
        "Bearer " + jwt({"alg": "EdDSA", "typ": "JWT", "kid": "k1"}, good),
        "Bearer " + jwt({"alg": "EdDSA", "kid": "k1"}, dict(good, exp=1000)),
        "Bearer " + jwt({"alg": "EdDSA", "kid": "k1"}, dict(good, aud="x", nbf=4102444000)),
        "Bearer " + jwt({"alg": "EdDSA", "kid": "k2"}, good),
        "Bearer " + jwt({"alg": "EdDSA"}, good),
        "Bearer " + jwt({"alg": "HS256", "kid": "k1"}, good),
        "Bearer " + jwt({"alg": "none", "kid": "k1"}, {"iss": "opencti"}),
    ]
except ImportError:
    print("cryptography not installed: no signed JWT seeds", file=sys.stderr)
for i, t in enumerate(tokens):
    put("callback", t + "\n" + json.dumps(MESSAGES[i % len(MESSAGES)]))
put("callback", json.dumps({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "FwH1mLtkWWueaz_gAPvnHhHeK33dkyaDyH5da2Jd1ao",
                                        "kid": "k1", "alg": "EdDSA", "use": "sig"}, {"kty": "RSA", "kid": "r"}]}) + "\n{}")


# key_table: tables in the layout of src/index/key_table.rs (format 5), as its writer
# makes them: sorted keys `field | term | record id (u64 BE)`, prefix-compressed in blocks
# closed at 1024 bytes, each followed by its CRC-32; the block index; the footer. The
# first byte of an input picks the target's fourth prefix.
def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def key_table(keys, block_bytes=1024):
    import struct
    import zlib
    blocks, index, block, first, last = bytearray(), bytearray(), bytearray(), b"", b""
    def flush():
        nonlocal block
        if block:
            blocks.extend(block + struct.pack("<I", zlib.crc32(bytes(block))))
            index.extend(struct.pack("<IH", len(block) + 4, len(first)) + first)
            block = bytearray()
    count = 0
    for key, location in keys:
        if not block:
            first, shared = key, 0
        else:
            shared = len(os.path.commonprefix([last, key]))
        block += varint(shared) + varint(len(key) - shared) + key[shared:] + varint(location)
        last, count = key, count + 1
        if len(block) >= block_bytes:
            flush()
    flush()
    nblocks = 0
    pos = 0
    while pos < len(index):
        nblocks += 1
        pos += 6 + struct.unpack_from("<H", index, pos + 4)[0]
    return bytes(blocks + index) + struct.pack("<QQQ", len(blocks), nblocks, count) + b"IVREKEY1"


def table_keys(n, terms):
    import struct
    keys = []
    for i in range(n):
        term = terms[i % len(terms)]
        keys.append((term + struct.pack(">Q", i), (i * 977) << 24 | 300))
    return sorted(keys)


names = [b"d" + b".".join(reversed(n.split(b"."))) + b".\x00" for n in
         [b"example.com", b"www.example.com", b"ivre.rocks", b"term1.example.org"]]
addresses = [b"h" + bytes(10) + b"\xff\xff" + bytes([192, 0, 2, i]) for i in range(8)]
for pick, keys in [
    (b"d", table_keys(12, names)),
    (b"h", table_keys(700, addresses)),
    (b"t", table_keys(300, [b"term1", b"term2", b"term10"])),
]:
    put("key_table", pick + key_table(keys))
