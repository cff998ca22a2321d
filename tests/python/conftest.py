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
    """The generated modules, as (messages, services)."""
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
    ])
    assert rc == 0, "protoc failed"
    sys.path.insert(0, str(out))
    from microscoped.v1 import microscope_pb2, microscope_pb2_grpc

    return microscope_pb2, microscope_pb2_grpc


@pytest.fixture()
def daemon():
    """Starts `microscoped serve` on 127.0.0.1:0 and yields its address."""
    binary = os.environ.get("MICROSCOPED_BIN", str(ROOT / "target" / "debug" / "microscoped"))
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "RUST_LOG": "info"},
    )
    addr = None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        m = re.search(r"serving.*addr=(\S+)", line)
        if m:
            addr = m.group(1)
            break
        if len(lines) > 200:
            break
    assert addr, "daemon did not start:\n" + "".join(lines)
    # Keep draining the log so the daemon never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    yield addr
    proc.terminate()
    assert proc.wait(timeout=20) == 0, "daemon did not stop cleanly on SIGTERM"
