from __future__ import annotations

import pytest

from gateway.core import jsonrpc
from gateway.core.errors import ParseError, ProtocolError


def test_encode_is_one_compact_line_even_for_pretty_input() -> None:
    pretty = jsonrpc.decode(b'{\n  "jsonrpc": "2.0",\n  "id": 1,\n  "method": "x",\n  "params": {"t": "a\\nb"}\n}')
    line = jsonrpc.encode(pretty)
    assert b"\n" not in line
    assert jsonrpc.decode(line) == pretty


def test_decode_rejects_non_json_with_parse_error() -> None:
    with pytest.raises(ParseError) as info:
        jsonrpc.decode(b"{not json")
    assert info.value.code == -32700


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ({"jsonrpc": "2.0", "id": 1, "method": "ping"}, "request"),
        ({"jsonrpc": "2.0", "id": "a", "method": "ping", "params": {}}, "request"),
        ({"jsonrpc": "2.0", "method": "notifications/initialized"}, "notification"),
        ({"jsonrpc": "2.0", "id": 3, "result": {}}, "response"),
        ({"jsonrpc": "2.0", "id": 3, "error": {"code": 1, "message": "x"}}, "response"),
    ],
)
def test_classify_recognises_each_kind(message: dict, kind: str) -> None:
    assert jsonrpc.classify(message) == kind


@pytest.mark.parametrize(
    "message",
    [
        [],
        "text",
        {"id": 1, "method": "ping"},
        {"jsonrpc": "1.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": True, "method": "ping"},
        {"jsonrpc": "2.0", "id": None, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1.5, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1, "method": 7},
        {"jsonrpc": "2.0", "id": 1, "method": "x", "params": [1, 2]},
        {"jsonrpc": "2.0", "id": 1},
    ],
)
def test_classify_rejects_wrong_shapes_with_invalid_request(message: object) -> None:
    with pytest.raises(ProtocolError) as info:
        jsonrpc.classify(message)
    assert info.value.code == -32600


def test_with_progress_token_replaces_only_the_token_and_copies() -> None:
    original = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "t", "_meta": {"progressToken": "p", "k": 1}},
    }
    rewritten = jsonrpc.with_progress_token(original, 99)
    assert rewritten["params"]["_meta"] == {"progressToken": 99, "k": 1}
    assert original["params"]["_meta"]["progressToken"] == "p"
    assert jsonrpc.progress_token(rewritten) == 99
    assert jsonrpc.progress_token({"jsonrpc": "2.0", "id": 1, "method": "x"}) is None


@pytest.mark.parametrize(
    ("head", "tail", "expected"),
    [
        (b'{"jsonrpc":"2.0","id":42,"result":{"x":"aaaa', b'aaaa"}}', 42),
        (b'{"jsonrpc":"2.0","id":"abc","result":{"x":"', b'"}}', "abc"),
        (b'{"jsonrpc":"2.0","result":{"x":"aaaa', b'aaaa"},"id":7}', 7),
        (b'{"jsonrpc":"2.0","result":{"x":"', b'"}}', None),
    ],
)
def test_sniff_id_recovers_ids_from_either_end_of_a_huge_frame(head: bytes, tail: bytes, expected: object) -> None:
    assert jsonrpc.sniff_id(head, tail) == expected


@pytest.mark.parametrize(
    ("requested", "upstream", "answer"),
    [
        ("2025-06-18", "2025-11-25", "2025-06-18"),  # echo what the client asked for
        ("2025-11-25", "2025-11-25", "2025-11-25"),
        ("2025-11-25", "2025-03-26", "2025-03-26"),  # never newer than the upstream speaks
        ("1999-01-01", "2025-11-25", "2025-11-25"),  # unknown: answer our own
        (None, "2025-06-18", "2025-06-18"),
    ],
)
def test_negotiate_echoes_supported_versions_only(requested: object, upstream: str, answer: str) -> None:
    assert jsonrpc.negotiate(requested, upstream) == answer


def _nested_body(depth: int) -> bytes:
    return b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"


@pytest.mark.parametrize("depth", [jsonrpc.MAX_DEPTH, 254, 1023, 5000])
def test_decoder_refuses_what_the_encoder_could_not_write(depth: int) -> None:
    body = _nested_body(depth)
    with pytest.raises(jsonrpc.TooDeep, match=f"more than {jsonrpc.MAX_DEPTH} levels") as caught:
        jsonrpc.decode(body)
    assert jsonrpc.refused_id(None, body, caught.value) == 7


def test_everything_the_decoder_accepts_can_be_encoded_again() -> None:
    body = _nested_body(jsonrpc.MAX_DEPTH - 2)  # the envelope adds two levels
    assert jsonrpc.encode(jsonrpc.decode(body)) == body
    wide = b"[" + b",".join([b"[[1]]"] * 10_000) + b"]"  # many brackets, little depth: accepted
    assert len(jsonrpc.decode(wide)) == 10_000


def test_a_message_that_cannot_be_encoded_is_a_protocol_error_not_a_crash() -> None:
    value: object = 1
    for _ in range(300):
        value = [value]
    with pytest.raises(ProtocolError, match="cannot be encoded"):
        jsonrpc.encode({"jsonrpc": "2.0", "id": 1, "result": value})  # type: ignore[dict-item]
