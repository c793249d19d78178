import logging

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.clock import FakeClock, parse_rfc3339, to_rfc3339
from tidings.ids import new_id
from tidings.log_setup import JsonFormatter, TextFormatter, redact_text


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("tidings.test", logging.INFO, __file__, 1, msg, None, None)
    for k, v in extra.items():
        setattr(record, k, v)
    return record


def test_json_formatter_writes_one_object_with_action() -> None:
    line = JsonFormatter().format(_record("hello", action="delivery.sent", endpoint_id="ep_1"))
    assert "\n" not in line
    doc = orjson.loads(line)
    assert doc["msg"] == "hello" and doc["action"] == "delivery.sent"
    assert doc["endpoint_id"] == "ep_1" and doc["level"] == "info"


@pytest.mark.parametrize(
    "secret", ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "ntsec_" + "ab" * 32, "tdk_Zm9vYmFy_x-y"]
)
def test_secrets_in_messages_are_redacted(secret: str) -> None:
    for fmt in (JsonFormatter(), TextFormatter()):
        out = fmt.format(_record(f"oops {secret} leaked"))
        assert secret not in out
    assert secret not in redact_text(secret)


def test_sensitive_extra_keys_are_redacted() -> None:
    out = JsonFormatter().format(_record("x", api_key="abc", secret="s3", authorization="Bearer t"))
    doc = orjson.loads(out)
    assert doc["api_key"] == doc["secret"] == doc["authorization"] == "[redacted]"


def test_ids_have_prefix_and_sort_by_time() -> None:
    a = new_id("evt", now=1000.0)
    b = new_id("evt", now=1001.0)
    assert a.startswith("evt_") and len(a) == 4 + 26
    assert a < b
    assert len({new_id("dlv") for _ in range(1000)}) == 1000


@given(st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False).map(lambda x: round(x, 3)))
def test_rfc3339_round_trip(ts: float) -> None:
    assert abs(parse_rfc3339(to_rfc3339(ts)) - ts) < 0.001


def test_rfc3339_parsing_variants() -> None:
    assert parse_rfc3339("2024-10-29T12:15:42Z") == parse_rfc3339("2024-10-29T14:15:42+02:00")
    assert to_rfc3339(parse_rfc3339("2024-10-29T12:15:42Z")) == "2024-10-29T12:15:42Z"
    with pytest.raises(ValueError):
        parse_rfc3339("yesterday")


def test_fake_clock() -> None:
    c = FakeClock(10.0)
    c.advance(5)
    assert c() == 15.0


def test_ids_are_ten_time_digits_then_sixteen_uniform_random_digits() -> None:
    """The layout of a ULID in Crockford base32: 48-bit milliseconds in ten digits (two leading
    zero bits), then 80 random bits in sixteen, every digit equally likely."""
    from collections import Counter

    from tidings import ids

    at = 1_732_000_000.5
    made = [new_id("dlv", now=at) for _ in range(20_000)]
    assert {m[4:14] for m in made} == {ids._encode(1_732_000_000_500, 10)}
    assert len(set(made)) == len(made)
    counts = Counter("".join(m[14:] for m in made))
    assert set(counts) == set(ids._ALPHABET)
    expected = 20_000 * 16 / 32
    assert all(abs(n - expected) < 0.1 * expected for n in counts.values()), counts
    assert new_id("evt", now=at + 0.25)[4:14] == ids._encode(1_732_000_000_750, 10)
