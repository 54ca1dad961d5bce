#!/usr/bin/env python3
"""Verifies a buildmesh result's attestations with nothing of buildmesh.

    python3 scripts/verify-attestation.py BUNDLE BUILDER_KEY [COMMIT]

BUNDLE is what GET /api/v1/results/{id}/attestation served (an in-toto
bundle: one DSSE envelope per line); BUILDER_KEY is the builder's ed25519
public key in hex, the `author` of the result's entry (GET
/api/v1/entries/{id}), which you trust because the project names it, not
because the bundle says so; COMMIT, if given, is the git commit the test
result must be about. Each envelope's signature is checked by
securesystemslib (PyPI: securesystemslib[crypto], which scripts/setup pins)
over DSSE's pre-authentication encoding; only then is its payload read.
Prints each verified in-toto Statement as one line of JSON and exits 0;
exits 1, saying why, if any line fails (docs/trust.md, "Attestations").
"""

import json
import sys

from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import Error as SslibError
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
TEST_RESULT_TYPE = "https://in-toto.io/attestation/test-result/v0.1"


def builder_key(key_hex: str) -> SSlibKey:
    """The builder's key; buildmesh names it by its hex in `keyid`."""
    key_hex = key_hex.strip().lower()
    if len(bytes.fromhex(key_hex)) != 32:
        raise ValueError("a builder key is 64 hex digits")
    return SSlibKey(key_hex, "ed25519", "ed25519", {"public": key_hex})


def verify_line(line: str, key: SSlibKey) -> dict:
    """The Statement of one envelope, once its signature verifies."""
    envelope = Envelope.from_dict(json.loads(line))
    # Raises VerificationError unless a signature verifies under the key.
    envelope.verify([key], 1)
    if envelope.payload_type != PAYLOAD_TYPE:
        raise VerificationError(f"payload type {envelope.payload_type!r} is not an in-toto Statement")
    statement = json.loads(envelope.payload)
    if statement.get("_type") != STATEMENT_TYPE:
        raise VerificationError(f"not an in-toto Statement v1: {statement.get('_type')!r}")
    return statement


def verify_bundle(text: str, key: SSlibKey, commit: str | None = None) -> list[dict]:
    """Every Statement of the bundle; raises if any line does not verify."""
    statements = [verify_line(line, key) for line in text.splitlines() if line.strip()]
    tested = [s for s in statements if s["predicateType"] == TEST_RESULT_TYPE]
    if len(tested) != 1:
        raise VerificationError(f"{len(tested)} test results in the bundle, not one")
    if commit is not None:
        commits = [s["digest"].get("gitCommit") for s in tested[0]["subject"]]
        if commit.lower() not in commits:
            raise VerificationError(f"the test result is about {commits}, not {commit}")
    return statements


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as bundle:
        text = bundle.read()
    try:
        statements = verify_bundle(text, builder_key(argv[2]), argv[3] if len(argv) == 4 else None)
    except (SslibError, ValueError, KeyError, TypeError, AttributeError) as error:
        print(f"verification FAILED: {error or type(error).__name__}", file=sys.stderr)
        return 1
    for statement in statements:
        print(json.dumps(statement, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
