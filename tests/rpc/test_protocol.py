import msgpack
import pytest

from cauldrond.rpc.protocol import MAX_DEPTH, RpcError, decode_request, encode_response, peek_msgid


def pack(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def test_decodes_a_request_with_named_params() -> None:
    request = decode_request(pack([0, 7, "system.info", [{"a": 1}]]))
    assert (request.msgid, request.method, request.params) == (7, "system.info", {"a": 1})
    assert decode_request(pack([0, 8, "queue.pause", []])).params == {}


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\xc1garbage", "invalid_request"),
        (pack({"not": "a list"}), "invalid_request"),
        (pack([1, 1, None, None]), "invalid_request"),
        (pack([0, -1, "x.y", []]), "invalid_request"),
        (pack([0, 1, 5, []]), "invalid_request"),
        (pack([0, 1, "x.y", {"positional": "map"}]), "invalid_params"),
        (pack([0, 1, "x.y", [1, 2]]), "invalid_params"),
        (pack([0, 1, "x.y", [{"s": "x" * 70_000}]]), "too_large"),
        (pack([0, 1, "x.y", [{"a": list(range(20_000))}]]), "too_large"),
        (pack([0, 1, "x.y", [{str(i): i for i in range(2000)}]]), "too_large"),
    ],
)
def test_bad_frames_raise_a_clear_error(frame: bytes, code: str) -> None:
    with pytest.raises(RpcError) as caught:
        decode_request(frame)
    assert caught.value.code == code
    assert caught.value.message


def test_deep_nesting_is_refused_without_recursion() -> None:
    value: object = 1
    for _ in range(MAX_DEPTH + 5):
        value = [value]
    with pytest.raises(RpcError) as caught:
        decode_request(pack([0, 1, "x.y", [{"deep": value}]]))
    assert caught.value.code == "too_large"


def test_msgid_is_recovered_from_a_rejected_request() -> None:
    assert peek_msgid(pack([0, 42, "x.y", [{"s": "x" * 70_000}]])) == 42
    assert peek_msgid(b"\xc1") is None


def test_response_shape() -> None:
    assert msgpack.unpackb(encode_response(3, None, {"ok": True})) == [1, 3, None, {"ok": True}]
    error = msgpack.unpackb(encode_response(4, RpcError("not_found", "no x", {"id": 1}), None))
    assert error == [1, 4, {"code": "not_found", "message": "no x", "data": {"id": 1}}, None]
