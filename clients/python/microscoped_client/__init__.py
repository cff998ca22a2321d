"""A Python client for microscoped, the microscope-control daemon.

    from microscoped_client import Microscope

    with Microscope("127.0.0.1:50051") as scope:
        print([d.name for d in scope.devices()])
        scope.set("Camera", "exposure_ms", 20)
        scope.move("XY", 100, -50)
        image = scope.snap()                      # numpy array, (height, width)
        status = scope.run_plan("timelapse.yaml", name="first-timelapse", progress=True)
        print(status.files)

The generated gRPC modules are in `microscoped_client.proto` for anything the helper does not
cover: `from microscoped_client.proto import pb, apb, pb_grpc, apb_grpc`.
"""

from .client import Microscope, ProgressLine, Run, format_progress
from .errors import (
    AcquisitionFailed,
    AlreadyExists,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    MicroscopedError,
    NotFound,
    OutOfRange,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from .models import (
    AcquisitionStatus,
    Device,
    Frame,
    Instrument,
    PlanProgress,
    PlanSummary,
    Setting,
    State,
)
from .plans import Plan, plan_request

__version__ = "0.1.0"

__all__ = [
    "AcquisitionFailed",
    "AcquisitionStatus",
    "AlreadyExists",
    "DataLoss",
    "DeadlineExceeded",
    "Device",
    "FailedPrecondition",
    "Frame",
    "Instrument",
    "InvalidArgument",
    "Microscope",
    "MicroscopedError",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "Plan",
    "ProgressLine",
    "PlanProgress",
    "PlanSummary",
    "Run",
    "Setting",
    "State",
    "Unauthenticated",
    "Unavailable",
    "format_progress",
    "plan_request",
]
