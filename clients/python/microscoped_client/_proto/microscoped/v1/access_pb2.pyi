from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_OBSERVER: _ClassVar[Role]
    ROLE_OPERATOR: _ClassVar[Role]
    ROLE_ADMIN: _ClassVar[Role]
ROLE_UNSPECIFIED: Role
ROLE_OBSERVER: Role
ROLE_OPERATOR: Role
ROLE_ADMIN: Role

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("user", "role", "peer")
    USER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    user: str
    role: Role
    peer: str
    def __init__(self, user: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., peer: _Optional[str] = ...) -> None: ...

class AcquireLeaseRequest(_message.Message):
    __slots__ = ("ttl_s",)
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    ttl_s: int
    def __init__(self, ttl_s: _Optional[int] = ...) -> None: ...

class RenewLeaseRequest(_message.Message):
    __slots__ = ("ttl_s",)
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    ttl_s: int
    def __init__(self, ttl_s: _Optional[int] = ...) -> None: ...

class ReleaseLeaseRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetLeaseRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BreakLeaseRequest(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class Lease(_message.Message):
    __slots__ = ("held", "holder", "holder_role", "taken_unix_us", "expires_unix_us", "remaining_s", "ttl_s")
    HELD_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    HOLDER_ROLE_FIELD_NUMBER: _ClassVar[int]
    TAKEN_UNIX_US_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_US_FIELD_NUMBER: _ClassVar[int]
    REMAINING_S_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    held: bool
    holder: str
    holder_role: Role
    taken_unix_us: int
    expires_unix_us: int
    remaining_s: float
    ttl_s: int
    def __init__(self, held: bool = ..., holder: _Optional[str] = ..., holder_role: _Optional[_Union[Role, str]] = ..., taken_unix_us: _Optional[int] = ..., expires_unix_us: _Optional[int] = ..., remaining_s: _Optional[float] = ..., ttl_s: _Optional[int] = ...) -> None: ...

class ReadAuditLogRequest(_message.Message):
    __slots__ = ("max_entries", "since_unix_us")
    MAX_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    SINCE_UNIX_US_FIELD_NUMBER: _ClassVar[int]
    max_entries: int
    since_unix_us: int
    def __init__(self, max_entries: _Optional[int] = ..., since_unix_us: _Optional[int] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("time", "time_unix_us", "user", "role", "peer", "action", "target", "detail_json", "outcome", "reason")
    TIME_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIX_US_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DETAIL_JSON_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    time: str
    time_unix_us: int
    user: str
    role: str
    peer: str
    action: str
    target: str
    detail_json: str
    outcome: str
    reason: str
    def __init__(self, time: _Optional[str] = ..., time_unix_us: _Optional[int] = ..., user: _Optional[str] = ..., role: _Optional[str] = ..., peer: _Optional[str] = ..., action: _Optional[str] = ..., target: _Optional[str] = ..., detail_json: _Optional[str] = ..., outcome: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReadAuditLogResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ...) -> None: ...
