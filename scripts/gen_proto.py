"""Regenerate proxy/ws/mexc_push_pb2.py from proxy/ws/mexc_push.proto.

    python scripts/gen_proto.py          # writes the module (needs grpcio-tools: the test extra)
    python scripts/gen_proto.py --check  # exit 1 if the committed module does not match the .proto

The generated module is committed, so running the sidecar needs only the `protobuf`
runtime. tests/unit/test_ws_proto.py runs the same check as `--check`: the descriptor
protoc builds from the .proto must equal the one the committed module registers.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO = "proxy/ws/mexc_push.proto"  # relative to ROOT: also the name it registers under
MODULE = ROOT / "proxy" / "ws" / "mexc_push_pb2.py"


def protoc(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", str(ROOT), *args, PROTO],
                   cwd=ROOT, check=True)


def descriptor_from_proto() -> bytes:
    """The FileDescriptorProto protoc builds from the .proto, serialized."""
    from google.protobuf import descriptor_pb2

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        protoc(f"--descriptor_set_out={out}")
        fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    (file,) = fds.file
    return _normalized(file)


def descriptor_of_module() -> bytes:
    """The FileDescriptorProto the committed module registers, serialized the same way."""
    from google.protobuf import descriptor_pb2

    from proxy.ws import mexc_push_pb2

    file = descriptor_pb2.FileDescriptorProto.FromString(mexc_push_pb2.DESCRIPTOR.serialized_pb)
    return _normalized(file)


def _normalized(file: object) -> bytes:
    """Serialized without `json_name`: protoc's descriptor set spells it out, the Python
    generator leaves it out (the runtime derives it from the field name, the same way)."""

    def strip(messages: object) -> None:
        for m in messages:  # type: ignore[attr-defined]
            for f in m.field:
                f.ClearField("json_name")
            strip(m.nested_type)

    strip(file.message_type)  # type: ignore[attr-defined]
    return file.SerializeToString(deterministic=True)  # type: ignore[attr-defined]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        if descriptor_from_proto() != descriptor_of_module():
            print(f"{MODULE.relative_to(ROOT)} does not match {PROTO}: run scripts/gen_proto.py")
            return 1
        print(f"{MODULE.relative_to(ROOT)} matches {PROTO}")
        return 0
    protoc(f"--python_out={ROOT}")
    print(f"wrote {MODULE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
