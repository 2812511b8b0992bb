"""Domain errors as gRPC statuses with `google.rpc` rich details.

The details travel in the `grpc-status-details-bin` trailer, which `grpc_status.rpc_status`
reads on the client side.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message

# googleapis-common-protos ships .pyi files but no py.typed marker, so mypy refuses them.
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from posgate import errors

ERROR_DOMAIN = "posgate"

STATUS_CODES: Mapping[type[errors.DomainError], grpc.StatusCode] = MappingProxyType(
    {
        errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
        errors.NotFound: grpc.StatusCode.NOT_FOUND,
        errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
        errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
        errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
        errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
        errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
        errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
        errors.Aborted: grpc.StatusCode.ABORTED,
        errors.Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
        # A bare DomainError is a deliberate refusal without a finer category.
        errors.DomainError: grpc.StatusCode.FAILED_PRECONDITION,
    }
)


def status_code_for(error: errors.DomainError) -> grpc.StatusCode:
    """Return the status code of an error, found through its class hierarchy.

    A service's own subclass (`class StockInsufficient(FailedPrecondition)`) maps like its
    nearest listed ancestor.
    """
    for cls in type(error).__mro__:
        code = STATUS_CODES.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.FAILED_PRECONDITION


def rich_status(error: errors.DomainError) -> grpc.Status:
    """Build the status of a domain error, with `ErrorInfo` and, if any, `BadRequest` details."""
    code = status_code_for(error)
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=ERROR_DOMAIN, metadata=dict(error.metadata)
    )
    details = [_packed(info)]
    if error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.violations
            ]
        )
        details.append(_packed(bad_request))
    message = status_pb2.Status(code=code.value[0], message=error.message, details=details)
    return rpc_status.to_status(message)


def _packed(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
