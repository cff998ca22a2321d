from microscoped_client._proto.microscoped.v1 import microscope_pb2 as _microscope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AcquisitionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACQUISITION_STATE_UNSPECIFIED: _ClassVar[AcquisitionState]
    ACQUISITION_STATE_RUNNING: _ClassVar[AcquisitionState]
    ACQUISITION_STATE_FINISHED: _ClassVar[AcquisitionState]
    ACQUISITION_STATE_STOPPED: _ClassVar[AcquisitionState]
    ACQUISITION_STATE_FAILED: _ClassVar[AcquisitionState]
    ACQUISITION_STATE_PAUSED: _ClassVar[AcquisitionState]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_ACQUISITION_STARTED: _ClassVar[EventKind]
    EVENT_KIND_ACQUISITION_PROGRESS: _ClassVar[EventKind]
    EVENT_KIND_ACQUISITION_FINISHED: _ClassVar[EventKind]
    EVENT_KIND_ACQUISITION_FAILED: _ClassVar[EventKind]
    EVENT_KIND_LEASE_TAKEN: _ClassVar[EventKind]
    EVENT_KIND_LEASE_RELEASED: _ClassVar[EventKind]
    EVENT_KIND_LEASE_EXPIRED: _ClassVar[EventKind]
    EVENT_KIND_LEASE_BROKEN: _ClassVar[EventKind]

class LiveMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LIVE_MODE_UNSPECIFIED: _ClassVar[LiveMode]
    LIVE_MODE_OFF: _ClassVar[LiveMode]
    LIVE_MODE_STARTING: _ClassVar[LiveMode]
    LIVE_MODE_LIVE: _ClassVar[LiveMode]
    LIVE_MODE_ACQUISITION: _ClassVar[LiveMode]
ACQUISITION_STATE_UNSPECIFIED: AcquisitionState
ACQUISITION_STATE_RUNNING: AcquisitionState
ACQUISITION_STATE_FINISHED: AcquisitionState
ACQUISITION_STATE_STOPPED: AcquisitionState
ACQUISITION_STATE_FAILED: AcquisitionState
ACQUISITION_STATE_PAUSED: AcquisitionState
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_ACQUISITION_STARTED: EventKind
EVENT_KIND_ACQUISITION_PROGRESS: EventKind
EVENT_KIND_ACQUISITION_FINISHED: EventKind
EVENT_KIND_ACQUISITION_FAILED: EventKind
EVENT_KIND_LEASE_TAKEN: EventKind
EVENT_KIND_LEASE_RELEASED: EventKind
EVENT_KIND_LEASE_EXPIRED: EventKind
EVENT_KIND_LEASE_BROKEN: EventKind
LIVE_MODE_UNSPECIFIED: LiveMode
LIVE_MODE_OFF: LiveMode
LIVE_MODE_STARTING: LiveMode
LIVE_MODE_LIVE: LiveMode
LIVE_MODE_ACQUISITION: LiveMode

class StartSequenceRequest(_message.Message):
    __slots__ = ("camera", "frames", "until_stopped", "name")
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    UNTIL_STOPPED_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    camera: str
    frames: int
    until_stopped: bool
    name: str
    def __init__(self, camera: _Optional[str] = ..., frames: _Optional[int] = ..., until_stopped: bool = ..., name: _Optional[str] = ...) -> None: ...

class AcquisitionRef(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class AcquisitionStatus(_message.Message):
    __slots__ = ("id", "name", "camera", "state", "frames_planned", "received", "written", "dropped", "bytes", "path", "error", "elapsed_s", "ring_slots", "width", "height", "pixel_type", "dropped_in_camera", "plan", "owner")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PLANNED_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_S_FIELD_NUMBER: _ClassVar[int]
    RING_SLOTS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PIXEL_TYPE_FIELD_NUMBER: _ClassVar[int]
    DROPPED_IN_CAMERA_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    camera: str
    state: AcquisitionState
    frames_planned: int
    received: int
    written: int
    dropped: int
    bytes: int
    path: str
    error: str
    elapsed_s: float
    ring_slots: int
    width: int
    height: int
    pixel_type: _microscope_pb2.PixelType
    dropped_in_camera: int
    plan: PlanProgress
    owner: str
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., camera: _Optional[str] = ..., state: _Optional[_Union[AcquisitionState, str]] = ..., frames_planned: _Optional[int] = ..., received: _Optional[int] = ..., written: _Optional[int] = ..., dropped: _Optional[int] = ..., bytes: _Optional[int] = ..., path: _Optional[str] = ..., error: _Optional[str] = ..., elapsed_s: _Optional[float] = ..., ring_slots: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., pixel_type: _Optional[_Union[_microscope_pb2.PixelType, str]] = ..., dropped_in_camera: _Optional[int] = ..., plan: _Optional[_Union[PlanProgress, _Mapping]] = ..., owner: _Optional[str] = ...) -> None: ...

class PlanRequest(_message.Message):
    __slots__ = ("sequence", "useq_json", "useq_yaml", "name", "camera")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    USEQ_JSON_FIELD_NUMBER: _ClassVar[int]
    USEQ_YAML_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    sequence: MdaSequence
    useq_json: str
    useq_yaml: str
    name: str
    camera: str
    def __init__(self, sequence: _Optional[_Union[MdaSequence, _Mapping]] = ..., useq_json: _Optional[str] = ..., useq_yaml: _Optional[str] = ..., name: _Optional[str] = ..., camera: _Optional[str] = ...) -> None: ...

class MdaSequence(_message.Message):
    __slots__ = ("axis_order", "stage_positions", "grid_plan", "channels", "time_plan", "z_plan", "keep_shutter_open_across", "metadata_json")
    AXIS_ORDER_FIELD_NUMBER: _ClassVar[int]
    STAGE_POSITIONS_FIELD_NUMBER: _ClassVar[int]
    GRID_PLAN_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    TIME_PLAN_FIELD_NUMBER: _ClassVar[int]
    Z_PLAN_FIELD_NUMBER: _ClassVar[int]
    KEEP_SHUTTER_OPEN_ACROSS_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    axis_order: str
    stage_positions: _containers.RepeatedCompositeFieldContainer[PlanPosition]
    grid_plan: PlanGrid
    channels: _containers.RepeatedCompositeFieldContainer[PlanChannel]
    time_plan: PlanTime
    z_plan: PlanZ
    keep_shutter_open_across: str
    metadata_json: str
    def __init__(self, axis_order: _Optional[str] = ..., stage_positions: _Optional[_Iterable[_Union[PlanPosition, _Mapping]]] = ..., grid_plan: _Optional[_Union[PlanGrid, _Mapping]] = ..., channels: _Optional[_Iterable[_Union[PlanChannel, _Mapping]]] = ..., time_plan: _Optional[_Union[PlanTime, _Mapping]] = ..., z_plan: _Optional[_Union[PlanZ, _Mapping]] = ..., keep_shutter_open_across: _Optional[str] = ..., metadata_json: _Optional[str] = ...) -> None: ...

class PlanPosition(_message.Message):
    __slots__ = ("x", "y", "z", "name")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    z: float
    name: str
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., z: _Optional[float] = ..., name: _Optional[str] = ...) -> None: ...

class PlanChannel(_message.Message):
    __slots__ = ("config", "group", "exposure", "do_stack", "z_offset", "acquire_every")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    DO_STACK_FIELD_NUMBER: _ClassVar[int]
    Z_OFFSET_FIELD_NUMBER: _ClassVar[int]
    ACQUIRE_EVERY_FIELD_NUMBER: _ClassVar[int]
    config: str
    group: str
    exposure: float
    do_stack: bool
    z_offset: float
    acquire_every: int
    def __init__(self, config: _Optional[str] = ..., group: _Optional[str] = ..., exposure: _Optional[float] = ..., do_stack: bool = ..., z_offset: _Optional[float] = ..., acquire_every: _Optional[int] = ...) -> None: ...

class PlanTime(_message.Message):
    __slots__ = ("phases",)
    PHASES_FIELD_NUMBER: _ClassVar[int]
    phases: _containers.RepeatedCompositeFieldContainer[PlanTimePhase]
    def __init__(self, phases: _Optional[_Iterable[_Union[PlanTimePhase, _Mapping]]] = ...) -> None: ...

class PlanTimePhase(_message.Message):
    __slots__ = ("interval_s", "duration_s", "loops")
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    LOOPS_FIELD_NUMBER: _ClassVar[int]
    interval_s: float
    duration_s: float
    loops: int
    def __init__(self, interval_s: _Optional[float] = ..., duration_s: _Optional[float] = ..., loops: _Optional[int] = ...) -> None: ...

class PlanZ(_message.Message):
    __slots__ = ("range", "step", "top", "bottom", "above", "below", "absolute", "relative", "go_up")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    BOTTOM_FIELD_NUMBER: _ClassVar[int]
    ABOVE_FIELD_NUMBER: _ClassVar[int]
    BELOW_FIELD_NUMBER: _ClassVar[int]
    ABSOLUTE_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_FIELD_NUMBER: _ClassVar[int]
    GO_UP_FIELD_NUMBER: _ClassVar[int]
    range: float
    step: float
    top: float
    bottom: float
    above: float
    below: float
    absolute: _containers.RepeatedScalarFieldContainer[float]
    relative: _containers.RepeatedScalarFieldContainer[float]
    go_up: bool
    def __init__(self, range: _Optional[float] = ..., step: _Optional[float] = ..., top: _Optional[float] = ..., bottom: _Optional[float] = ..., above: _Optional[float] = ..., below: _Optional[float] = ..., absolute: _Optional[_Iterable[float]] = ..., relative: _Optional[_Iterable[float]] = ..., go_up: bool = ...) -> None: ...

class PlanGrid(_message.Message):
    __slots__ = ("rows", "columns", "relative_to", "top", "left", "bottom", "right", "width", "height", "overlap_x", "overlap_y", "mode")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_TO_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    LEFT_FIELD_NUMBER: _ClassVar[int]
    BOTTOM_FIELD_NUMBER: _ClassVar[int]
    RIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_X_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_Y_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    rows: int
    columns: int
    relative_to: str
    top: float
    left: float
    bottom: float
    right: float
    width: float
    height: float
    overlap_x: float
    overlap_y: float
    mode: str
    def __init__(self, rows: _Optional[int] = ..., columns: _Optional[int] = ..., relative_to: _Optional[str] = ..., top: _Optional[float] = ..., left: _Optional[float] = ..., bottom: _Optional[float] = ..., right: _Optional[float] = ..., width: _Optional[float] = ..., height: _Optional[float] = ..., overlap_x: _Optional[float] = ..., overlap_y: _Optional[float] = ..., mode: _Optional[str] = ...) -> None: ...

class PlanSummary(_message.Message):
    __slots__ = ("events", "sizes", "used_axes", "duration_s", "interval_exceeded", "bytes", "free_bytes", "files", "fov_width_um", "fov_height_um", "warnings", "open_files")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    SIZES_FIELD_NUMBER: _ClassVar[int]
    USED_AXES_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_EXCEEDED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    FOV_WIDTH_UM_FIELD_NUMBER: _ClassVar[int]
    FOV_HEIGHT_UM_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    OPEN_FILES_FIELD_NUMBER: _ClassVar[int]
    events: int
    sizes: PlanIndex
    used_axes: str
    duration_s: float
    interval_exceeded: bool
    bytes: int
    free_bytes: int
    files: int
    fov_width_um: float
    fov_height_um: float
    warnings: _containers.RepeatedScalarFieldContainer[str]
    open_files: int
    def __init__(self, events: _Optional[int] = ..., sizes: _Optional[_Union[PlanIndex, _Mapping]] = ..., used_axes: _Optional[str] = ..., duration_s: _Optional[float] = ..., interval_exceeded: bool = ..., bytes: _Optional[int] = ..., free_bytes: _Optional[int] = ..., files: _Optional[int] = ..., fov_width_um: _Optional[float] = ..., fov_height_um: _Optional[float] = ..., warnings: _Optional[_Iterable[str]] = ..., open_files: _Optional[int] = ...) -> None: ...

class PlanIndex(_message.Message):
    __slots__ = ("t", "p", "g", "c", "z")
    T_FIELD_NUMBER: _ClassVar[int]
    P_FIELD_NUMBER: _ClassVar[int]
    G_FIELD_NUMBER: _ClassVar[int]
    C_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    t: int
    p: int
    g: int
    c: int
    z: int
    def __init__(self, t: _Optional[int] = ..., p: _Optional[int] = ..., g: _Optional[int] = ..., c: _Optional[int] = ..., z: _Optional[int] = ...) -> None: ...

class PlanProgress(_message.Message):
    __slots__ = ("events_total", "events_done", "current", "channel", "position_name", "time_left_s", "late_events", "max_late_s", "folder", "files", "summary")
    EVENTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    EVENTS_DONE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    POSITION_NAME_FIELD_NUMBER: _ClassVar[int]
    TIME_LEFT_S_FIELD_NUMBER: _ClassVar[int]
    LATE_EVENTS_FIELD_NUMBER: _ClassVar[int]
    MAX_LATE_S_FIELD_NUMBER: _ClassVar[int]
    FOLDER_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    events_total: int
    events_done: int
    current: PlanIndex
    channel: str
    position_name: str
    time_left_s: float
    late_events: int
    max_late_s: float
    folder: str
    files: _containers.RepeatedScalarFieldContainer[str]
    summary: PlanSummary
    def __init__(self, events_total: _Optional[int] = ..., events_done: _Optional[int] = ..., current: _Optional[_Union[PlanIndex, _Mapping]] = ..., channel: _Optional[str] = ..., position_name: _Optional[str] = ..., time_left_s: _Optional[float] = ..., late_events: _Optional[int] = ..., max_late_s: _Optional[float] = ..., folder: _Optional[str] = ..., files: _Optional[_Iterable[str]] = ..., summary: _Optional[_Union[PlanSummary, _Mapping]] = ...) -> None: ...

class ListAcquisitionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAcquisitionsResponse(_message.Message):
    __slots__ = ("acquisitions",)
    ACQUISITIONS_FIELD_NUMBER: _ClassVar[int]
    acquisitions: _containers.RepeatedCompositeFieldContainer[AcquisitionStatus]
    def __init__(self, acquisitions: _Optional[_Iterable[_Union[AcquisitionStatus, _Mapping]]] = ...) -> None: ...

class LiveViewRequest(_message.Message):
    __slots__ = ("camera", "max_fps")
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    MAX_FPS_FIELD_NUMBER: _ClassVar[int]
    camera: str
    max_fps: float
    def __init__(self, camera: _Optional[str] = ..., max_fps: _Optional[float] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Event(_message.Message):
    __slots__ = ("kind", "time_unix_us", "acquisition", "lease")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIX_US_FIELD_NUMBER: _ClassVar[int]
    ACQUISITION_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    kind: EventKind
    time_unix_us: int
    acquisition: AcquisitionStatus
    lease: LeaseEvent
    def __init__(self, kind: _Optional[_Union[EventKind, str]] = ..., time_unix_us: _Optional[int] = ..., acquisition: _Optional[_Union[AcquisitionStatus, _Mapping]] = ..., lease: _Optional[_Union[LeaseEvent, _Mapping]] = ...) -> None: ...

class LeaseEvent(_message.Message):
    __slots__ = ("holder", "by", "reason", "expires_unix_us")
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_US_FIELD_NUMBER: _ClassVar[int]
    holder: str
    by: str
    reason: str
    expires_unix_us: int
    def __init__(self, holder: _Optional[str] = ..., by: _Optional[str] = ..., reason: _Optional[str] = ..., expires_unix_us: _Optional[int] = ...) -> None: ...

class ReadPlaneRequest(_message.Message):
    __slots__ = ("id", "plane", "position", "coords")
    ID_FIELD_NUMBER: _ClassVar[int]
    PLANE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    COORDS_FIELD_NUMBER: _ClassVar[int]
    id: int
    plane: int
    position: int
    coords: PlaneCoords
    def __init__(self, id: _Optional[int] = ..., plane: _Optional[int] = ..., position: _Optional[int] = ..., coords: _Optional[_Union[PlaneCoords, _Mapping]] = ...) -> None: ...

class PlaneCoords(_message.Message):
    __slots__ = ("t", "c", "z")
    T_FIELD_NUMBER: _ClassVar[int]
    C_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    t: int
    c: int
    z: int
    def __init__(self, t: _Optional[int] = ..., c: _Optional[int] = ..., z: _Optional[int] = ...) -> None: ...

class LiveStatusRequest(_message.Message):
    __slots__ = ("camera",)
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    camera: str
    def __init__(self, camera: _Optional[str] = ...) -> None: ...

class LiveStatus(_message.Message):
    __slots__ = ("camera", "mode", "viewers", "drivers", "frames", "ring_slots", "ring_bytes", "acquisition_id", "error")
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    VIEWERS_FIELD_NUMBER: _ClassVar[int]
    DRIVERS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    RING_SLOTS_FIELD_NUMBER: _ClassVar[int]
    RING_BYTES_FIELD_NUMBER: _ClassVar[int]
    ACQUISITION_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    camera: str
    mode: LiveMode
    viewers: int
    drivers: int
    frames: int
    ring_slots: int
    ring_bytes: int
    acquisition_id: int
    error: str
    def __init__(self, camera: _Optional[str] = ..., mode: _Optional[_Union[LiveMode, str]] = ..., viewers: _Optional[int] = ..., drivers: _Optional[int] = ..., frames: _Optional[int] = ..., ring_slots: _Optional[int] = ..., ring_bytes: _Optional[int] = ..., acquisition_id: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...
