"""Fixtures: Python gRPC stubs generated from proto/ with grpcio-tools, and the real daemon
binary serving the demo instrument on a free loopback port."""

import os
import pathlib
import re
import subprocess
import sys
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """The generated modules of proto/, as (messages, services)."""
    from grpc_tools import protoc
    import grpc_tools

    out = tmp_path_factory.mktemp("gen")
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    rc = protoc.main([
        "protoc",
        f"-I{ROOT / 'proto'}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        "microscoped/v1/microscope.proto",
        "microscoped/v1/acquisition.proto",
        "microscoped/v1/access.proto",
    ])
    assert rc == 0, "protoc failed"
    sys.path.insert(0, str(out))
    from microscoped.v1 import access_pb2, access_pb2_grpc
    from microscoped.v1 import acquisition_pb2, acquisition_pb2_grpc, microscope_pb2, microscope_pb2_grpc

    return (
        Merged(microscope_pb2, acquisition_pb2, access_pb2),
        Merged(microscope_pb2_grpc, acquisition_pb2_grpc, access_pb2_grpc),
    )


class Merged:
    """The generated modules of several .proto files of one package, seen as one."""

    def __init__(self, *modules):
        self._modules = modules

    def __getattr__(self, name):
        for m in self._modules:
            if hasattr(m, name):
                return getattr(m, name)
        raise AttributeError(name)


class Daemon:
    """A `microscoped serve` process on a free loopback port."""

    def __init__(self, config=None):
        binary = os.environ.get("MICROSCOPED_BIN", str(ROOT / "target" / "debug" / "microscoped"))
        args = [binary, "serve", "--listen", "127.0.0.1:0"]
        if config is not None:
            args += ["--config", str(config)]
        self.binary = binary
        self.proc = subprocess.Popen(
            args,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "RUST_LOG": "info"},
        )
        self.addr = None
        # The metrics URL (with [metrics] in the config), else None.
        self.metrics = None
        lines = []
        for line in self.proc.stderr:
            lines.append(line)
            m = re.search(r"serving.* addr=(\S+)", line)
            if m:
                self.addr = m.group(1)
                metrics = re.search(r" metrics=(http\S+)", line)
                self.metrics = metrics.group(1) if metrics else None
                break
            if len(lines) > 200:
                break
        assert self.addr, "daemon did not start:\n" + "".join(lines)
        # Keep draining the log so the daemon never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            assert self.proc.wait(timeout=30) == 0, "daemon did not stop cleanly on SIGTERM"


@pytest.fixture()
def serve():
    """A factory: serve(config_path=None) starts a daemon; all are stopped at the end."""
    started = []

    def start(config=None):
        d = Daemon(config)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


@pytest.fixture()
def daemon(serve):
    """The daemon on the embedded demo instrument; yields its address."""
    yield serve().addr
