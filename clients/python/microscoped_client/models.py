"""Plain Python views of the daemon's messages, so scripts need not know protobuf.

Each keeps the message it was made from as `raw`, for fields this module does not copy.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from ._proto.microscoped.v1 import acquisition_pb2 as apb
from ._proto.microscoped.v1 import microscope_pb2 as pb
from .errors import MicroscopedError

#: A property value as Python sees it.
PyValue = Union[bool, int, float, str]

AXES = "tpgcz"


def to_value(value: Any) -> pb.Value:
    """A Python bool, int, float or str (numpy scalars too) as the API's `Value`."""
    # bool before int: True is an int to Python but a bool to the daemon.
    if isinstance(value, (bool, np.bool_)):
        return pb.Value(bool_value=bool(value))
    if isinstance(value, (int, np.integer)):
        return pb.Value(int_value=int(value))
    if isinstance(value, (float, np.floating)):
        return pb.Value(float_value=float(value))
    if isinstance(value, str):
        return pb.Value(string_value=value)
    raise TypeError(f"a property value is a bool, int, float or str, not {type(value).__name__}")


def from_value(value: pb.Value) -> Optional[PyValue]:
    """The Python value of a `Value`; None when it holds none."""
    kind = value.WhichOneof("kind")
    return getattr(value, kind) if kind else None


def _enum_name(enum_type: Any, number: int, prefix: str) -> str:
    """`DEVICE_KIND_XY_STAGE` -> `xy_stage`; a number this client does not know stays visible."""
    try:
        return str(enum_type.Name(number))[len(prefix):].lower()
    except ValueError:
        return f"unknown({number})"


@dataclass
class Device:
    name: str
    #: "camera", "stage", "xy_stage", "laser", "state", "shutter"
    kind: str
    driver: str
    description: str
    #: False when the device is faulted (`fault` says why); its commands fail until reset.
    healthy: bool
    fault: str
    raw: pb.Device = field(repr=False)

    @classmethod
    def from_proto(cls, d: pb.Device) -> "Device":
        return cls(
            name=d.name,
            kind=_enum_name(pb.DeviceKind, d.kind, "DEVICE_KIND_"),
            driver=d.driver,
            description=d.description,
            healthy=d.health == pb.DEVICE_HEALTH_OK,
            fault=d.fault,
            raw=d,
        )


@dataclass
class Instrument:
    name: str
    description: str
    daemon_version: str
    devices: List[Device]
    #: µm of sample per (unbinned) camera pixel with the current objective; 0 if not configured.
    pixel_size_um: float
    objective: str
    raw: pb.Instrument = field(repr=False)

    @classmethod
    def from_proto(cls, i: pb.Instrument) -> "Instrument":
        return cls(
            name=i.name,
            description=i.description,
            daemon_version=i.daemon_version,
            devices=[Device.from_proto(d) for d in i.devices],
            pixel_size_um=i.pixel_size_um,
            objective=i.objective,
            raw=i,
        )


@dataclass
class Setting:
    """One property of one device and its value (a preset's setting, or one read back)."""

    device: str
    property: str
    value: Optional[PyValue]

    @classmethod
    def from_proto(cls, v: pb.PropertyValue) -> "Setting":
        return cls(device=v.device, property=v.property, value=from_value(v.value))


def position_of(p: pb.StagePosition) -> Union[float, Tuple[float, ...]]:
    """One number for a stage, (x, y) for an XY stage."""
    values = tuple(p.position_um)
    return values[0] if len(values) == 1 else values


@dataclass
class Frame:
    """One image with what the daemon knew about it."""

    #: (height, width), uint8 or uint16.
    pixels: np.ndarray
    camera: str
    bit_depth: int
    exposure_ms: float
    #: When the frame arrived, Unix epoch microseconds (the daemon's clock).
    time_unix_us: int
    binning: int
    roi: Tuple[int, int]
    #: Stage positions at the time of the image: one number per stage, (x, y) per XY stage.
    stage_positions: Dict[str, Union[float, Tuple[float, ...]]]
    raw_metadata: pb.ImageMetadata = field(repr=False)

    @classmethod
    def from_proto(cls, img: pb.Image) -> "Frame":
        m = img.metadata
        return cls(
            pixels=pixels_of(img),
            camera=img.camera,
            bit_depth=img.bit_depth,
            exposure_ms=m.exposure_ms,
            time_unix_us=m.host_time_unix_us,
            binning=m.binning,
            roi=(m.roi_x, m.roi_y),
            stage_positions={name: position_of(p) for name, p in m.stage_positions.items()},
            raw_metadata=m,
        )


_DTYPES: Dict[int, "np.dtype[Any]"] = {pb.PIXEL_TYPE_U8: np.dtype("u1"), pb.PIXEL_TYPE_U16: np.dtype("<u2")}


def pixels_of(img: pb.Image) -> np.ndarray:
    """The image as a (height, width) array in native byte order."""
    dtype = _DTYPES.get(img.pixel_type)
    if dtype is None:
        raise MicroscopedError(f"image of unknown pixel type {img.pixel_type}; "
                               "this client is older than the daemon")
    # astype copies: the array is writable and native-endian, not a view of the message.
    pixels: np.ndarray = np.frombuffer(img.data, dtype=dtype).reshape(img.height, img.width)
    return pixels.astype(dtype.newbyteorder("="))


@dataclass
class PlanSummary:
    """What a plan amounts to on the instrument (from ValidatePlan)."""

    #: Images to take.
    events: int
    #: Items along each axis t, p, g, c, z (0: not iterated).
    sizes: Dict[str, int]
    #: The iterated axes, outermost first, e.g. "tpcz".
    used_axes: str
    #: Lower bound of the run time: exposures and intervals, without stage moves.
    duration_s: float
    #: The exposures of one time point take longer than the interval.
    interval_exceeded: bool
    #: Bytes the dataset will take, and bytes free where it goes.
    bytes: int
    free_bytes: int
    #: OME-TIFF files: one per position (and grid tile).
    files: int
    #: The most of them the run keeps open at once (from the daemon's file descriptor limit).
    open_files: int
    fov_width_um: float
    fov_height_um: float
    #: Allowed, but probably not what was meant.
    warnings: List[str]
    raw: apb.PlanSummary = field(repr=False)

    @classmethod
    def from_proto(cls, s: apb.PlanSummary) -> "PlanSummary":
        return cls(
            events=s.events,
            sizes={a: getattr(s.sizes, a) for a in AXES},
            used_axes=s.used_axes,
            duration_s=s.duration_s,
            interval_exceeded=s.interval_exceeded,
            bytes=s.bytes,
            free_bytes=s.free_bytes,
            files=s.files,
            open_files=s.open_files,
            fov_width_um=s.fov_width_um,
            fov_height_um=s.fov_height_um,
            warnings=list(s.warnings),
            raw=s,
        )


@dataclass
class PlanProgress:
    """Where a plan run stands."""

    events_total: int
    events_done: int
    #: The index (t, p, g, c, z) of the event being taken, or the last one once ended.
    current: Dict[str, int]
    #: Its channel preset and stage position name, if any.
    channel: str
    position_name: str
    #: Estimated seconds to the end.
    time_left_s: float
    #: Events that started later than the time plan asked, and the most any was late.
    late_events: int
    max_late_s: float
    #: The dataset folder and its OME-TIFF files, on the daemon's machine.
    folder: str
    files: List[str]
    summary: Optional[PlanSummary]

    @classmethod
    def from_proto(cls, p: apb.PlanProgress) -> "PlanProgress":
        return cls(
            events_total=p.events_total,
            events_done=p.events_done,
            current={a: getattr(p.current, a) for a in AXES},
            channel=p.channel,
            position_name=p.position_name,
            time_left_s=p.time_left_s,
            late_events=p.late_events,
            max_late_s=p.max_late_s,
            folder=p.folder,
            files=list(p.files),
            summary=PlanSummary.from_proto(p.summary) if p.HasField("summary") else None,
        )


class State(str, enum.Enum):
    """An acquisition's state. Compares equal to its lower-case name: `state == "finished"`."""

    UNSPECIFIED = "unspecified"
    RUNNING = "running"
    PAUSED = "paused"
    #: Took every frame it was asked for.
    FINISHED = "finished"
    #: Stopped early (cancelled, or the daemon shut down); the files hold what was taken.
    STOPPED = "stopped"
    #: Ended by an error (`AcquisitionStatus.error`); the files hold what was written before.
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        return self in (State.FINISHED, State.STOPPED, State.FAILED)


@dataclass
class AcquisitionStatus:
    """An acquisition's state and counters. Every frame is accounted for once it has ended:
    received = written + dropped."""

    id: int
    name: str
    camera: str
    state: State
    #: Frames asked for (0: until stopped).
    frames_planned: int
    received: int
    written: int
    dropped: int
    #: Of `dropped`, the frames the camera itself lost (a busy host).
    dropped_in_camera: int
    bytes: int
    #: The OME-TIFF file, on the daemon's machine (for plans: the dataset folder).
    path: str
    #: Why it failed; empty otherwise.
    error: str
    elapsed_s: float
    #: For plans: where the run stands; None for sequences.
    plan: Optional[PlanProgress]
    raw: apb.AcquisitionStatus = field(repr=False)

    @property
    def ended(self) -> bool:
        return self.state.ended

    @property
    def files(self) -> List[str]:
        """The dataset's OME-TIFF files, on the daemon's machine (paths relative to its
        working folder unless its data root is absolute)."""
        if self.plan is not None and self.plan.files:
            return list(self.plan.files)
        return [self.path] if self.path else []

    @classmethod
    def from_proto(cls, s: apb.AcquisitionStatus) -> "AcquisitionStatus":
        try:
            state = State(_enum_name(apb.AcquisitionState, s.state, "ACQUISITION_STATE_"))
        except ValueError:
            # A state newer than this client: not one it can call ended.
            state = State.UNSPECIFIED
        return cls(
            id=s.id,
            name=s.name,
            camera=s.camera,
            state=state,
            frames_planned=s.frames_planned,
            received=s.received,
            written=s.written,
            dropped=s.dropped,
            dropped_in_camera=s.dropped_in_camera,
            bytes=s.bytes,
            path=s.path,
            error=s.error,
            elapsed_s=s.elapsed_s,
            plan=PlanProgress.from_proto(s.plan) if s.HasField("plan") else None,
            raw=s,
        )
