"""msgpack-RPC message shapes and the limits that keep a hostile frame from costing more than it is worth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

REQUEST, RESPONSE, NOTIFICATION = 0, 1, 2

MAX_FRAME_BYTES = 1024 * 1024
MAX_STR_LEN = 64 * 1024
MAX_BIN_LEN = 64 * 1024
MAX_ARRAY_LEN = 10_000
MAX_MAP_LEN = 1_000
MAX_DEPTH = 32
MAX_MSGID = 2**32 - 1
# A reply must fit in one frame the clients accept (cauldron_client takes 16 MiB); what could be larger pages.
MAX_REPLY_BYTES = 15 * 1024 * 1024
# Error text quotes what was wrong, never a whole hostile value: a 64 KiB string is cut to this many characters.
MAX_ERROR_TEXT = 300
MAX_ERROR_ITEMS = 20


class RpcError(Exception):
    """An error reply: ``{"code", "message", "data"}``."""

    def __init__(self, code: str, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_wire(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": shorten(self.message, 4 * MAX_ERROR_TEXT),
            "data": _shorten_data(self.data),
        }


def shorten(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def _shorten_data(value: Any, depth: int = 0) -> Any:
    """An error's ``data`` with long strings cut and long lists trimmed, so a reply never echoes a hostile value."""
    if isinstance(value, str):
        return shorten(value)
    if isinstance(value, bytes):
        return shorten(repr(value))
    if depth > 4:
        return shorten(repr(value))
    if isinstance(value, list | tuple):
        return [_shorten_data(item, depth + 1) for item in value[:MAX_ERROR_ITEMS]]
    if isinstance(value, dict):
        items = list(value.items())[:MAX_ERROR_ITEMS]
        return {shorten(str(key), 100): _shorten_data(item, depth + 1) for key, item in items}
    return value


@dataclass(frozen=True)
class Request:
    msgid: int
    method: str
    params: dict[str, Any]


def decode_request(frame: bytes) -> Request:
    """Decode one binary frame into a request or raise RpcError. The msgid, when it can be read, is attached to
    the error as ``data`` by the caller through ``peek_msgid``."""
    try:
        message = msgpack.unpackb(
            frame,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_str_len=MAX_STR_LEN,
            max_bin_len=MAX_BIN_LEN,
            max_array_len=MAX_ARRAY_LEN,
            max_map_len=MAX_MAP_LEN,
            max_ext_len=0,
        )
    except msgpack.exceptions.StackError as exc:
        raise RpcError("too_large", f"message nested deeper than the decoder allows: {exc}") from exc
    except ValueError as exc:
        # msgpack reports exceeded limits as ValueError subclasses; everything else is a malformed frame.
        if "exceeds max" in str(exc):
            raise RpcError("too_large", f"message over the limits: {exc}") from exc
        raise RpcError("invalid_request", f"not a msgpack message: {exc}") from exc
    except Exception as exc:  # msgpack raises several unrelated types for garbage input
        raise RpcError("invalid_request", f"not a msgpack message: {type(exc).__name__}") from exc
    if _depth(message) > MAX_DEPTH:
        raise RpcError("too_large", f"message nested deeper than {MAX_DEPTH} levels")
    if not isinstance(message, list) or len(message) != 4 or message[0] != REQUEST:
        raise RpcError("invalid_request", "expected a request [0, msgid, method, params]")
    _, msgid, method, params = message
    if not isinstance(msgid, int) or isinstance(msgid, bool) or not 0 <= msgid <= MAX_MSGID:
        raise RpcError("invalid_request", "msgid must be an unsigned 32-bit integer")
    if not isinstance(method, str):
        raise RpcError("invalid_request", "method must be a string", {"msgid": msgid})
    if not isinstance(params, list) or len(params) > 1 or (params and not isinstance(params[0], dict)):
        raise RpcError(
            "invalid_params",
            "params must be an array holding at most one map of named arguments",
            {"msgid": msgid},
        )
    return Request(msgid, method, params[0] if params else {})


def peek_msgid(frame: bytes) -> int | None:
    """Best effort: the msgid of a request whose body was rejected, so the error can be matched to it."""
    try:
        unpacker = msgpack.Unpacker(max_buffer_size=64, raw=False)
        unpacker.feed(frame[:64])
        header = unpacker.read_array_header()
        if header == 4 and unpacker.unpack() == REQUEST:
            msgid = unpacker.unpack()
            if isinstance(msgid, int) and not isinstance(msgid, bool) and 0 <= msgid <= MAX_MSGID:
                return msgid
    except Exception:  # nosec B110
        pass  # a frame we cannot read gets an error without a msgid
    return None


def encode_response(msgid: int | None, error: RpcError | None, result: Any) -> bytes:
    payload = [RESPONSE, msgid, error.to_wire() if error else None, None if error else result]
    packed: bytes = msgpack.packb(payload, use_bin_type=True, datetime=False)
    return packed


def encode_notification(method: str, params: list[Any]) -> bytes:
    packed: bytes = msgpack.packb([NOTIFICATION, method, params], use_bin_type=True)
    return packed


def _depth(value: Any) -> int:
    """Nesting depth without recursion, so a deep message cannot exhaust the stack."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > MAX_DEPTH:
                return deepest
        if isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
    return deepest
