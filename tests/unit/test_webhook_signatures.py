"""Webhook signature schemes: valid, missing, wrong, truncated, stale, re-serialised JSON."""

from __future__ import annotations

import base64
import json

import pytest

from flowplane.errors import SignatureInvalid
from flowplane.security.webhooks import TOLERANCE_SECONDS, sign, standard_key, verify

NOW = 1_700_000_000
BODY = b'{"id":"evt_1", "amount": 100,\n "items":[1,2]}'
SECRETS = {
    "standard": "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode(),
    "github": "gh-secret",
    "stripe": "whsec_stripe_secret",
}
SIGNED = ("standard", "github", "stripe")
TIMED = ("standard", "stripe")


def headers_for(scheme: str, body: bytes = BODY, *, ts: int = NOW) -> dict[str, str]:
    return sign(scheme, SECRETS[scheme], body, timestamp=ts, delivery_id="msg_1")


def check(scheme: str, headers: dict[str, str], body: bytes = BODY) -> str | None:
    return verify(scheme, SECRETS[scheme], body, headers, now=NOW).delivery_id


def reason(scheme: str, headers: dict[str, str], body: bytes = BODY) -> str:
    with pytest.raises(SignatureInvalid) as info:
        check(scheme, headers, body)
    assert info.value.status == 401
    assert info.value.code == "signature_invalid"
    return str(info.value.extra["reason"])


@pytest.mark.parametrize("scheme", SIGNED)
def test_valid_signature(scheme: str) -> None:
    assert check(scheme, headers_for(scheme)) is not None


def test_delivery_ids() -> None:
    assert check("standard", headers_for("standard")) == "msg_1"
    assert check("github", headers_for("github")) == "msg_1"  # X-GitHub-Delivery
    assert check("stripe", headers_for("stripe")) == "evt_1"  # the event id of the body
    github = headers_for("github")
    del github["X-GitHub-Delivery"]
    assert str(check("github", github)).startswith("sig:")


@pytest.mark.parametrize("scheme", SIGNED)
def test_header_names_are_case_insensitive(scheme: str) -> None:
    upper = {k.upper(): v for k, v in headers_for(scheme).items()}
    assert check(scheme, upper) is not None


@pytest.mark.parametrize("scheme", SIGNED)
def test_missing_signature(scheme: str) -> None:
    assert reason(scheme, {}) == "missing"


@pytest.mark.parametrize("scheme", SIGNED)
def test_wrong_secret(scheme: str) -> None:
    headers = sign(scheme, "another-secret", BODY, timestamp=NOW, delivery_id="msg_1")
    assert reason(scheme, headers) == "mismatch"


@pytest.mark.parametrize("scheme", SIGNED)
def test_tampered_body(scheme: str) -> None:
    assert reason(scheme, headers_for(scheme), BODY.replace(b"100", b"900")) == "mismatch"


@pytest.mark.parametrize("scheme", SIGNED)
def test_signature_over_reserialised_json_is_refused(scheme: str) -> None:
    """A sender's signature is over its exact bytes; parsing and re-dumping changes them."""
    reserialised = json.dumps(json.loads(BODY)).encode()
    assert reserialised != BODY
    assert reason(scheme, headers_for(scheme, reserialised)) == "mismatch"


def truncate(scheme: str, headers: dict[str, str]) -> dict[str, str]:
    name = {
        "standard": "webhook-signature",
        "github": "X-Hub-Signature-256",
        "stripe": "Stripe-Signature",
    }[scheme]
    return {**headers, name: headers[name][:-6]}


@pytest.mark.parametrize("scheme", SIGNED)
def test_truncated_signature(scheme: str) -> None:
    assert reason(scheme, truncate(scheme, headers_for(scheme))) == "mismatch"


@pytest.mark.parametrize("scheme", TIMED)
@pytest.mark.parametrize("offset", [-(TOLERANCE_SECONDS + 1), TOLERANCE_SECONDS + 1])
def test_stale_or_future_timestamp(scheme: str, offset: int) -> None:
    assert reason(scheme, headers_for(scheme, ts=NOW + offset)) == "stale"


@pytest.mark.parametrize("scheme", TIMED)
def test_timestamp_within_tolerance(scheme: str) -> None:
    assert check(scheme, headers_for(scheme, ts=NOW - TOLERANCE_SECONDS + 5)) is not None


def test_standard_timestamp_is_signed() -> None:
    headers = headers_for("standard", ts=NOW - 10)
    headers["webhook-timestamp"] = str(NOW)  # fresh time, old signature
    assert reason("standard", headers) == "mismatch"


def test_standard_malformed_timestamp_and_id_binding() -> None:
    headers = headers_for("standard")
    assert reason("standard", {**headers, "webhook-timestamp": "soon"}) == "malformed"
    assert reason("standard", {**headers, "webhook-id": "msg_2"}) == "mismatch"


@pytest.mark.parametrize("scheme", TIMED)
@pytest.mark.parametrize(
    "stamp", ["9" * 400, "-" + "9" * 400, "9" * 16, "\u0661\u0662\u0663", "1_700_000_000", "+1"]
)
def test_absurd_timestamps_are_malformed_never_an_overflow(scheme: str, stamp: str) -> None:
    headers = headers_for(scheme)
    if scheme == "standard":
        headers["webhook-timestamp"] = stamp
    else:
        headers["Stripe-Signature"] = headers["Stripe-Signature"].replace(f"t={NOW}", f"t={stamp}")
    assert reason(scheme, headers) == "malformed"


def test_standard_accepts_any_of_several_signatures() -> None:
    headers = headers_for("standard")
    headers["webhook-signature"] = "v1,AAAA v1a,xyz " + headers["webhook-signature"]
    assert check("standard", headers) == "msg_1"


def test_standard_secret_key() -> None:
    assert standard_key(SECRETS["standard"]) == b"0123456789abcdef0123456789abcdef"
    assert standard_key("plain") == b"plain"


def test_github_prefix_must_be_sha256() -> None:
    headers = headers_for("github")
    value = headers["X-Hub-Signature-256"].replace("sha256=", "sha1=")
    assert reason("github", {"X-Hub-Signature-256": value}) == "malformed"


def test_stripe_needs_a_v1_and_a_timestamp() -> None:
    headers = headers_for("stripe")
    v1 = headers["Stripe-Signature"].split(",")[1]
    assert reason("stripe", {"Stripe-Signature": f"t={NOW}"}) == "malformed"
    assert reason("stripe", {"Stripe-Signature": v1}) == "missing"


def test_signed_scheme_without_secret_refuses() -> None:
    with pytest.raises(SignatureInvalid) as info:
        verify("github", None, BODY, headers_for("github"), now=NOW)
    assert info.value.extra["reason"] == "no_secret"


def test_scheme_none_takes_an_optional_delivery_id() -> None:
    assert verify("none", None, BODY, {}).delivery_id is None
    assert verify("none", None, BODY, {"Idempotency-Key": "k1"}).delivery_id == "k1"
