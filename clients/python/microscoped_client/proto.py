"""The generated gRPC modules, for what the `Microscope` helper does not cover.

    from microscoped_client.proto import pb, pb_grpc
    stub = pb_grpc.MicroscopeStub(scope.channel)
    stub.SetState(pb.SetStateRequest(device="FilterWheel", label="GFP"), metadata=scope.metadata)

`pb`/`pb_grpc` are microscope.proto (service Microscope), `apb`/`apb_grpc` acquisition.proto
(service Acquisition), `xpb`/`xpb_grpc` access.proto (service Access: who am I, the lease, the
audit log). They are regenerated from proto/ by clients/python/generate.py.
"""

from ._proto.microscoped.v1 import access_pb2 as xpb
from ._proto.microscoped.v1 import access_pb2_grpc as xpb_grpc
from ._proto.microscoped.v1 import acquisition_pb2 as apb
from ._proto.microscoped.v1 import acquisition_pb2_grpc as apb_grpc
from ._proto.microscoped.v1 import microscope_pb2 as pb
from ._proto.microscoped.v1 import microscope_pb2_grpc as pb_grpc

__all__ = ["apb", "apb_grpc", "pb", "pb_grpc", "xpb", "xpb_grpc"]
