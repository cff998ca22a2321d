from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeviceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_KIND_UNSPECIFIED: _ClassVar[DeviceKind]
    DEVICE_KIND_CAMERA: _ClassVar[DeviceKind]
    DEVICE_KIND_STAGE: _ClassVar[DeviceKind]
    DEVICE_KIND_XY_STAGE: _ClassVar[DeviceKind]
    DEVICE_KIND_LASER: _ClassVar[DeviceKind]
    DEVICE_KIND_STATE: _ClassVar[DeviceKind]
    DEVICE_KIND_SHUTTER: _ClassVar[DeviceKind]

class DeviceHealth(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_HEALTH_UNSPECIFIED: _ClassVar[DeviceHealth]
    DEVICE_HEALTH_OK: _ClassVar[DeviceHealth]
    DEVICE_HEALTH_FAULTED: _ClassVar[DeviceHealth]

class PixelType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PIXEL_TYPE_UNSPECIFIED: _ClassVar[PixelType]
    PIXEL_TYPE_U8: _ClassVar[PixelType]
    PIXEL_TYPE_U16: _ClassVar[PixelType]
DEVICE_KIND_UNSPECIFIED: DeviceKind
DEVICE_KIND_CAMERA: DeviceKind
DEVICE_KIND_STAGE: DeviceKind
DEVICE_KIND_XY_STAGE: DeviceKind
DEVICE_KIND_LASER: DeviceKind
DEVICE_KIND_STATE: DeviceKind
DEVICE_KIND_SHUTTER: DeviceKind
DEVICE_HEALTH_UNSPECIFIED: DeviceHealth
DEVICE_HEALTH_OK: DeviceHealth
DEVICE_HEALTH_FAULTED: DeviceHealth
PIXEL_TYPE_UNSPECIFIED: PixelType
PIXEL_TYPE_U8: PixelType
PIXEL_TYPE_U16: PixelType

class GetInstrumentRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Instrument(_message.Message):
    __slots__ = ("name", "description", "daemon_version", "devices", "pixel_size_um", "objective")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DAEMON_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    PIXEL_SIZE_UM_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    daemon_version: str
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    pixel_size_um: float
    objective: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., daemon_version: _Optional[str] = ..., devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ..., pixel_size_um: _Optional[float] = ..., objective: _Optional[str] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ("name", "kind", "driver", "description", "health", "fault")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DRIVER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    FAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: DeviceKind
    driver: str
    description: str
    health: DeviceHealth
    fault: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[DeviceKind, str]] = ..., driver: _Optional[str] = ..., description: _Optional[str] = ..., health: _Optional[_Union[DeviceHealth, str]] = ..., fault: _Optional[str] = ...) -> None: ...

class ListDevicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListDevicesResponse(_message.Message):
    __slots__ = ("devices",)
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    def __init__(self, devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ...) -> None: ...

class ResetDeviceRequest(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: str
    def __init__(self, device: _Optional[str] = ...) -> None: ...

class DeviceRef(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: str
    def __init__(self, device: _Optional[str] = ...) -> None: ...

class ListPropertiesRequest(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: str
    def __init__(self, device: _Optional[str] = ...) -> None: ...

class PropertySpec(_message.Message):
    __slots__ = ("name", "bool_type", "int_type", "float_type", "string_type", "enum_type", "unit", "read_only", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BOOL_TYPE_FIELD_NUMBER: _ClassVar[int]
    INT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_TYPE_FIELD_NUMBER: _ClassVar[int]
    STRING_TYPE_FIELD_NUMBER: _ClassVar[int]
    ENUM_TYPE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    bool_type: BoolType
    int_type: IntType
    float_type: FloatType
    string_type: StringType
    enum_type: EnumType
    unit: str
    read_only: bool
    description: str
    def __init__(self, name: _Optional[str] = ..., bool_type: _Optional[_Union[BoolType, _Mapping]] = ..., int_type: _Optional[_Union[IntType, _Mapping]] = ..., float_type: _Optional[_Union[FloatType, _Mapping]] = ..., string_type: _Optional[_Union[StringType, _Mapping]] = ..., enum_type: _Optional[_Union[EnumType, _Mapping]] = ..., unit: _Optional[str] = ..., read_only: bool = ..., description: _Optional[str] = ...) -> None: ...

class BoolType(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IntType(_message.Message):
    __slots__ = ("min", "max")
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    min: int
    max: int
    def __init__(self, min: _Optional[int] = ..., max: _Optional[int] = ...) -> None: ...

class FloatType(_message.Message):
    __slots__ = ("min", "max")
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    min: float
    max: float
    def __init__(self, min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class StringType(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EnumType(_message.Message):
    __slots__ = ("allowed",)
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    allowed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, allowed: _Optional[_Iterable[str]] = ...) -> None: ...

class ListPropertiesResponse(_message.Message):
    __slots__ = ("properties",)
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    properties: _containers.RepeatedCompositeFieldContainer[PropertySpec]
    def __init__(self, properties: _Optional[_Iterable[_Union[PropertySpec, _Mapping]]] = ...) -> None: ...

class Value(_message.Message):
    __slots__ = ("bool_value", "int_value", "float_value", "string_value")
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    bool_value: bool
    int_value: int
    float_value: float
    string_value: str
    def __init__(self, bool_value: bool = ..., int_value: _Optional[int] = ..., float_value: _Optional[float] = ..., string_value: _Optional[str] = ...) -> None: ...

class GetPropertyRequest(_message.Message):
    __slots__ = ("device", "property")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    PROPERTY_FIELD_NUMBER: _ClassVar[int]
    device: str
    property: str
    def __init__(self, device: _Optional[str] = ..., property: _Optional[str] = ...) -> None: ...

class PropertyValue(_message.Message):
    __slots__ = ("device", "property", "value")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    PROPERTY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    device: str
    property: str
    value: Value
    def __init__(self, device: _Optional[str] = ..., property: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...

class SetPropertyRequest(_message.Message):
    __slots__ = ("device", "property", "value")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    PROPERTY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    device: str
    property: str
    value: Value
    def __init__(self, device: _Optional[str] = ..., property: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...

class SetPropertiesRequest(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: _containers.RepeatedCompositeFieldContainer[SetPropertyRequest]
    def __init__(self, settings: _Optional[_Iterable[_Union[SetPropertyRequest, _Mapping]]] = ...) -> None: ...

class SetPropertiesResponse(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[PropertyValue]
    def __init__(self, values: _Optional[_Iterable[_Union[PropertyValue, _Mapping]]] = ...) -> None: ...

class MoveRequest(_message.Message):
    __slots__ = ("device", "position_um")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    POSITION_UM_FIELD_NUMBER: _ClassVar[int]
    device: str
    position_um: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, device: _Optional[str] = ..., position_um: _Optional[_Iterable[float]] = ...) -> None: ...

class StagePosition(_message.Message):
    __slots__ = ("device", "position_um", "busy")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    POSITION_UM_FIELD_NUMBER: _ClassVar[int]
    BUSY_FIELD_NUMBER: _ClassVar[int]
    device: str
    position_um: _containers.RepeatedScalarFieldContainer[float]
    busy: bool
    def __init__(self, device: _Optional[str] = ..., position_um: _Optional[_Iterable[float]] = ..., busy: bool = ...) -> None: ...

class WaitForIdleRequest(_message.Message):
    __slots__ = ("device", "timeout_ms")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    device: str
    timeout_ms: int
    def __init__(self, device: _Optional[str] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class WaitForIdleResponse(_message.Message):
    __slots__ = ("device", "waited_ms")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    WAITED_MS_FIELD_NUMBER: _ClassVar[int]
    device: str
    waited_ms: float
    def __init__(self, device: _Optional[str] = ..., waited_ms: _Optional[float] = ...) -> None: ...

class SetLaserEnabledRequest(_message.Message):
    __slots__ = ("device", "enabled")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    device: str
    enabled: bool
    def __init__(self, device: _Optional[str] = ..., enabled: bool = ...) -> None: ...

class SetLaserPowerRequest(_message.Message):
    __slots__ = ("device", "power_mw")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    POWER_MW_FIELD_NUMBER: _ClassVar[int]
    device: str
    power_mw: float
    def __init__(self, device: _Optional[str] = ..., power_mw: _Optional[float] = ...) -> None: ...

class LaserState(_message.Message):
    __slots__ = ("device", "enabled", "setpoint_mw", "power_mw", "max_power_mw", "wavelength_nm")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    SETPOINT_MW_FIELD_NUMBER: _ClassVar[int]
    POWER_MW_FIELD_NUMBER: _ClassVar[int]
    MAX_POWER_MW_FIELD_NUMBER: _ClassVar[int]
    WAVELENGTH_NM_FIELD_NUMBER: _ClassVar[int]
    device: str
    enabled: bool
    setpoint_mw: float
    power_mw: float
    max_power_mw: float
    wavelength_nm: float
    def __init__(self, device: _Optional[str] = ..., enabled: bool = ..., setpoint_mw: _Optional[float] = ..., power_mw: _Optional[float] = ..., max_power_mw: _Optional[float] = ..., wavelength_nm: _Optional[float] = ...) -> None: ...

class SetStateRequest(_message.Message):
    __slots__ = ("device", "index", "label")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    device: str
    index: int
    label: str
    def __init__(self, device: _Optional[str] = ..., index: _Optional[int] = ..., label: _Optional[str] = ...) -> None: ...

class StateDeviceState(_message.Message):
    __slots__ = ("device", "index", "label", "labels", "busy")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    BUSY_FIELD_NUMBER: _ClassVar[int]
    device: str
    index: int
    label: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    busy: bool
    def __init__(self, device: _Optional[str] = ..., index: _Optional[int] = ..., label: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., busy: bool = ...) -> None: ...

class SetShutterRequest(_message.Message):
    __slots__ = ("device", "open")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    device: str
    open: bool
    def __init__(self, device: _Optional[str] = ..., open: bool = ...) -> None: ...

class ShutterState(_message.Message):
    __slots__ = ("device", "open")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    device: str
    open: bool
    def __init__(self, device: _Optional[str] = ..., open: bool = ...) -> None: ...

class SnapRequest(_message.Message):
    __slots__ = ("camera", "exposure_ms")
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    EXPOSURE_MS_FIELD_NUMBER: _ClassVar[int]
    camera: str
    exposure_ms: float
    def __init__(self, camera: _Optional[str] = ..., exposure_ms: _Optional[float] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("camera", "width", "height", "pixel_type", "bit_depth", "data", "metadata")
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PIXEL_TYPE_FIELD_NUMBER: _ClassVar[int]
    BIT_DEPTH_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    camera: str
    width: int
    height: int
    pixel_type: PixelType
    bit_depth: int
    data: bytes
    metadata: ImageMetadata
    def __init__(self, camera: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., pixel_type: _Optional[_Union[PixelType, str]] = ..., bit_depth: _Optional[int] = ..., data: _Optional[bytes] = ..., metadata: _Optional[_Union[ImageMetadata, _Mapping]] = ...) -> None: ...

class ImageMetadata(_message.Message):
    __slots__ = ("exposure_ms", "camera_timestamp_us", "host_time_unix_us", "binning", "roi_x", "roi_y", "stage_positions")
    class StagePositionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: StagePosition
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[StagePosition, _Mapping]] = ...) -> None: ...
    EXPOSURE_MS_FIELD_NUMBER: _ClassVar[int]
    CAMERA_TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    HOST_TIME_UNIX_US_FIELD_NUMBER: _ClassVar[int]
    BINNING_FIELD_NUMBER: _ClassVar[int]
    ROI_X_FIELD_NUMBER: _ClassVar[int]
    ROI_Y_FIELD_NUMBER: _ClassVar[int]
    STAGE_POSITIONS_FIELD_NUMBER: _ClassVar[int]
    exposure_ms: float
    camera_timestamp_us: int
    host_time_unix_us: int
    binning: int
    roi_x: int
    roi_y: int
    stage_positions: _containers.MessageMap[str, StagePosition]
    def __init__(self, exposure_ms: _Optional[float] = ..., camera_timestamp_us: _Optional[int] = ..., host_time_unix_us: _Optional[int] = ..., binning: _Optional[int] = ..., roi_x: _Optional[int] = ..., roi_y: _Optional[int] = ..., stage_positions: _Optional[_Mapping[str, StagePosition]] = ...) -> None: ...

class ListPresetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PresetGroup(_message.Message):
    __slots__ = ("name", "presets")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRESETS_FIELD_NUMBER: _ClassVar[int]
    name: str
    presets: _containers.RepeatedCompositeFieldContainer[Preset]
    def __init__(self, name: _Optional[str] = ..., presets: _Optional[_Iterable[_Union[Preset, _Mapping]]] = ...) -> None: ...

class Preset(_message.Message):
    __slots__ = ("name", "settings")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    settings: _containers.RepeatedCompositeFieldContainer[PropertyValue]
    def __init__(self, name: _Optional[str] = ..., settings: _Optional[_Iterable[_Union[PropertyValue, _Mapping]]] = ...) -> None: ...

class ListPresetsResponse(_message.Message):
    __slots__ = ("groups",)
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[PresetGroup]
    def __init__(self, groups: _Optional[_Iterable[_Union[PresetGroup, _Mapping]]] = ...) -> None: ...

class ApplyPresetRequest(_message.Message):
    __slots__ = ("group", "preset")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    group: str
    preset: str
    def __init__(self, group: _Optional[str] = ..., preset: _Optional[str] = ...) -> None: ...

class ApplyPresetResponse(_message.Message):
    __slots__ = ("applied",)
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    applied: _containers.RepeatedCompositeFieldContainer[PropertyValue]
    def __init__(self, applied: _Optional[_Iterable[_Union[PropertyValue, _Mapping]]] = ...) -> None: ...
