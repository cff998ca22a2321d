"""Errors: the daemon's gRPC status, as exceptions whose message is the daemon's own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import grpc

if TYPE_CHECKING:
    from .models import AcquisitionStatus


class MicroscopedError(Exception):
    """The daemon refused or failed a request.

    `str(error)` is the daemon's message (written to say what is wrong and what is allowed);
    `code` is the gRPC status code, e.g. `grpc.StatusCode.NOT_FOUND`. The subclasses below let
    a script catch one kind: `except NotFound:`.
    """

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class NotFound(MicroscopedError):
    """An unknown device, property, label, preset or acquisition."""


class InvalidArgument(MicroscopedError):
    """A wrong type, an out-of-range value or an invalid plan (the message names the field)."""


class FailedPrecondition(MicroscopedError):
    """A read-only property, or a device or acquisition not in a state to do this."""


class AlreadyExists(MicroscopedError):
    """A dataset of that name exists already."""


class DeadlineExceeded(MicroscopedError):
    """A device (or the daemon) did not answer in time."""


class Unavailable(MicroscopedError):
    """A faulted device, or no daemon answering at the address."""


class Unauthenticated(MicroscopedError):
    """The daemon wants a token (`Microscope(token=...)`), or a valid one."""


class PermissionDenied(MicroscopedError):
    """The token is valid but does not allow this."""


class OutOfRange(MicroscopedError):
    """A plane not (yet) written, or coordinates outside a dataset's sizes."""


class DataLoss(MicroscopedError):
    """A dataset's file is damaged."""


class AcquisitionFailed(MicroscopedError):
    """An acquisition ended in the FAILED state; `status.error` says why.

    The files keep what was written before the failure (`status.files`).
    """

    def __init__(self, status: "AcquisitionStatus") -> None:
        super().__init__(f"acquisition {status.id} ({status.name}) failed: {status.error}")
        self.status = status


_BY_CODE = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRange,
    grpc.StatusCode.DATA_LOSS: DataLoss,
}


def from_rpc_error(error: grpc.RpcError) -> MicroscopedError:
    """The exception for a failed call, carrying the daemon's message unchanged."""
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else None
    if not details and code == grpc.StatusCode.UNIMPLEMENTED:
        # The daemon gives no message for a request it does not know.
        details = "the daemon does not know this request: it is older than this client"
    message = details or (code.name if code is not None else str(error))
    return _BY_CODE.get(code, MicroscopedError)(message, code)
