"""The gateway's errors: one hierarchy, each error carrying the JSON-RPC code a client receives.

    GatewayError                      -32603  (internal)
    ├── ProtocolError                 -32600  a message of the wrong shape
    │   ├── ParseError                -32700  bytes that are not JSON
    │   ├── TooDeep                   -32600  nested deeper than the gateway's limit
    │   ├── HeaderMismatch            -32020  a 2026-07-28 header disagrees with the body
    │   └── InvalidParams             -32602  params that do not have the spec's shape for the method
    ├── MessageTooLarge               -32012  a frame over the configured byte limit
    ├── RequestTimeout                -32001  no reply (nor progress) within the request timeout
    ├── RequestCancelled              -32800  the client cancelled the request
    ├── UpstreamError                 -32010  the MCP server behind the gateway cannot answer
    │   ├── UpstreamExited            -32011  its process exited while the request was in flight
    │   ├── NoRoute                   -32014  a server→client request with no unambiguous client
    │   └── MissingCapability         -32021  a server→client request the (modern) client did not declare
    ├── ShuttingDown                  -32015  the gateway is stopping (the call was not finished in time)
    ├── StateDown                     -32016  replicas' shared state (Redis) is unreachable (HTTP 503)
    ├── MethodNotFound                -32601  a method this endpoint does not have (for its protocol era)
    └── SessionError                  -32600
        ├── SessionNotFound           -32600  unknown or terminated session (HTTP 404)
        └── CapacityExceeded          -32013  the session cap is reached

`Elsewhere` is not an error a client sees: it tells a transport to relay the request to another replica.

Codes in -32000..-32099 are the JSON-RPC "server error" range; -32001 and -32800 follow the MCP SDKs'
conventions for timeouts and cancellation. These errors never carry secrets or stack traces.
"""

from __future__ import annotations

from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REQUEST_TIMEOUT = -32001
UPSTREAM_UNAVAILABLE = -32010
UPSTREAM_EXITED = -32011
MESSAGE_TOO_LARGE = -32012
CAPACITY_EXCEEDED = -32013
NO_ROUTE = -32014
SHUTTING_DOWN = -32015
STATE_DOWN = -32016
MISSING_CAPABILITY = -32021
HEADER_MISMATCH = -32020
REQUEST_CANCELLED = -32800


class GatewayError(Exception):
    """Base of every error the gateway reports to a client."""

    code: int = INTERNAL_ERROR

    def __init__(self, message: str, *, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class ProtocolError(GatewayError):
    code = INVALID_REQUEST


class ParseError(ProtocolError):
    code = PARSE_ERROR


class TooDeep(ProtocolError):
    pass


class InvalidParams(ProtocolError):
    code = INVALID_PARAMS


class MessageTooLarge(GatewayError):
    code = MESSAGE_TOO_LARGE


class RequestTimeout(GatewayError):
    code = REQUEST_TIMEOUT


class RequestCancelled(GatewayError):
    code = REQUEST_CANCELLED


class UpstreamError(GatewayError):
    code = UPSTREAM_UNAVAILABLE


class UpstreamExited(UpstreamError):
    code = UPSTREAM_EXITED


class NoRoute(UpstreamError):
    code = NO_ROUTE


class MissingCapability(UpstreamError):
    code = MISSING_CAPABILITY


class ShuttingDown(GatewayError):
    code = SHUTTING_DOWN


class HeaderMismatch(ProtocolError):
    code = HEADER_MISMATCH


class MethodNotFound(GatewayError):
    code = METHOD_NOT_FOUND

    def __init__(self, method: str, detail: str = "") -> None:
        super().__init__(f"Method not found: {method}{detail}")


class SessionError(GatewayError):
    code = INVALID_REQUEST


class SessionNotFound(SessionError):
    pass


class CapacityExceeded(SessionError):
    code = CAPACITY_EXCEEDED


class StateDown(GatewayError):
    code = STATE_DOWN


class Elsewhere(Exception):
    """The request must be served by another replica: relay it (over HTTP) to `address`."""

    def __init__(self, replica: str, address: str) -> None:
        super().__init__(f"served by replica {replica}")
        self.replica = replica
        self.address = address
