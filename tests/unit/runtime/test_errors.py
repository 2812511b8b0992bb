"""Domain errors and their gRPC statuses."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from posgate import errors
from posgate.runtime.status import rich_status, status_code_for


class StockInsufficient(errors.FailedPrecondition):
    default_reason = "STOCK_INSUFFICIENT"


@pytest.mark.parametrize(
    ("error_type", "code"),
    [
        (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
        (errors.NotFound, grpc.StatusCode.NOT_FOUND),
        (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
        (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
        (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
        (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
        (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
        (errors.Aborted, grpc.StatusCode.ABORTED),
        (errors.Unimplemented, grpc.StatusCode.UNIMPLEMENTED),
        (errors.DomainError, grpc.StatusCode.FAILED_PRECONDITION),
        (StockInsufficient, grpc.StatusCode.FAILED_PRECONDITION),
    ],
)
def test_each_category_maps_to_its_status_code(error_type, code):
    assert status_code_for(error_type("message")) == code


def test_a_subclass_keeps_its_own_default_reason():
    assert StockInsufficient("only 2 left").reason == "STOCK_INSUFFICIENT"
    assert errors.NotFound("gone").reason == "NOT_FOUND"


@pytest.mark.parametrize(
    "reason", ["lower_case", "Mixed_Case", "TRAILING_", "_LEADING", "WITH SPACE", "", "A" * 64]
)
def test_reasons_must_be_upper_snake(reason):
    with pytest.raises(ValueError, match="UPPER_SNAKE"):
        errors.NotFound("x", reason=reason)


def test_metadata_is_a_read_only_copy():
    source = {"sku": "A1"}
    error = errors.NotFound("x", metadata=source)
    source["sku"] = "changed"
    assert error.metadata == {"sku": "A1"}
    with pytest.raises(TypeError):
        error.metadata["sku"] = "B2"  # type: ignore[index]


def test_rich_status_carries_error_info_and_bad_request():
    error = errors.InvalidArgument(
        "bad lines",
        reason="ORDER_LINES_INVALID",
        metadata={"order": "o-1"},
        violations=[errors.FieldViolation("lines[0].sku", "unknown SKU")],
    )
    status = rich_status(error)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert status.details == "bad lines"
    ((key, raw),) = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    message = status_pb2.Status.FromString(raw)
    info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert message.details[0].Unpack(info) and message.details[1].Unpack(bad_request)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "ORDER_LINES_INVALID",
        "posgate",
        {"order": "o-1"},
    )
    assert bad_request.field_violations[0].field == "lines[0].sku"


def test_rich_status_has_no_bad_request_without_violations():
    raw = rich_status(errors.NotFound("gone")).trailing_metadata[0][1]
    assert len(status_pb2.Status.FromString(raw).details) == 1


def test_errors_never_import_grpc():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(errors.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name.startswith("grpc") for name in imported)
