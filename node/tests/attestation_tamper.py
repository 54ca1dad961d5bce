"""Every single-byte change to a buildmesh attestation bundle fails
verification by securesystemslib (a third-party DSSE implementation).

    python3 attestation_tamper.py BUNDLE BUILDER_KEY

Run by node/tests/attestations.rs with the venv's Python (scripts/setup).
For each envelope of the bundle it checks that the envelope as served
verifies under the builder's key, then changes one byte at a time (XOR
0x01) and checks that verification fails:

- every byte of the decoded payload (the in-toto Statement);
- every byte of the decoded signature;
- every byte of the payload type;
- every byte of the line as served (the JSON text): the change either
  makes the line unreadable, or makes verification fail, or (base64's
  slack: the unused low bits of a final character) spells exactly the
  same bytes, which is the same envelope and is counted apart.

Prints one JSON object of counts and exits 0; fails with an assertion
naming the byte otherwise.
"""

import base64
import binascii
import copy
import json
import sys

from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import Error as SslibError
from securesystemslib.signer import SSlibKey


def builder_key(key_hex: str) -> SSlibKey:
    return SSlibKey(key_hex, "ed25519", "ed25519", {"public": key_hex})


def decoded(envelope: dict) -> Envelope:
    # from_dict rewrites the dict it is given.
    return Envelope.from_dict(copy.deepcopy(envelope))


def verifies(envelope: dict, key: SSlibKey) -> bool:
    try:
        decoded(envelope).verify([key], 1)
        return True
    except (SslibError, binascii.Error, ValueError, KeyError, TypeError, AttributeError):
        return False


def flipped(data: bytes, at: int) -> bytes:
    changed = bytearray(data)
    changed[at] ^= 0x01
    return bytes(changed)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def check_envelope(line: str, key: SSlibKey, counts: dict) -> None:
    envelope = json.loads(line)
    assert verifies(envelope, key), "the envelope as served does not verify"
    payload = base64.b64decode(envelope["payload"])
    for at in range(len(payload)):
        changed = dict(envelope, payload=b64(flipped(payload, at)))
        assert not verifies(changed, key), f"payload byte {at} changed and it still verifies"
        counts["payload"] += 1
    [signature] = envelope["signatures"]
    sig = base64.b64decode(signature["sig"])
    for at in range(len(sig)):
        changed = dict(envelope, signatures=[dict(signature, sig=b64(flipped(sig, at)))])
        assert not verifies(changed, key), f"signature byte {at} changed and it still verifies"
        counts["signature"] += 1
    payload_type = envelope["payloadType"].encode()
    for at in range(len(payload_type)):
        changed = dict(envelope, payloadType=flipped(payload_type, at).decode("latin-1"))
        assert not verifies(changed, key), f"payloadType byte {at} changed and it still verifies"
        counts["payloadType"] += 1
    original = decoded(envelope)
    raw = line.encode()
    for at in range(len(raw)):
        counts["line"] += 1
        try:
            changed = json.loads(flipped(raw, at).decode())
        except (UnicodeDecodeError, json.JSONDecodeError):
            counts["line_unreadable"] += 1
            continue
        if not verifies(changed, key):
            counts["line_refused"] += 1
            continue
        assert decoded(changed) == original, f"line byte {at} changed and it still verifies"
        counts["line_same_bytes"] += 1


def main(argv: list[str]) -> int:
    path, key_hex = argv[1], argv[2]
    key = builder_key(key_hex)
    with open(path, encoding="utf-8") as bundle:
        lines = [line for line in bundle.read().splitlines() if line.strip()]
    assert lines, "an empty bundle"
    counts = dict.fromkeys(
        ["envelopes", "payload", "signature", "payloadType", "line", "line_unreadable",
         "line_refused", "line_same_bytes"],
        0,
    )
    for line in lines:
        check_envelope(line, key, counts)
        counts["envelopes"] += 1
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
