"""Our .proto (proxy/ws/mexc_push.proto) and the module generated from it.

- The committed module is what protoc makes of the .proto today (scripts/gen_proto.py
  --check, run here): nobody edits one without the other.
- Every message and field MEXC's own generated classes have (as ccxt 4.5.90 bundles them,
  an independent copy of MEXC's files) is in ours with the same number, type and
  presence, so anything MEXC's decoders read, ours encodes at the same place.
- Ours live in their own package and file, so both sets load in one process.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import ccxt.protobuf.mexc as ccxt_mexc
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from proxy.ws import mexc_push_pb2 as ours

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import gen_proto  # noqa: E402


def test_the_committed_module_is_generated_from_the_proto() -> None:
    from_proto = gen_proto.descriptor_from_proto()
    assert from_proto == gen_proto.descriptor_of_module()
    assert gen_proto.main(["--check"]) == 0


def test_the_check_fails_when_the_proto_changes(tmp_path: Path, monkeypatch) -> None:
    """The check can fail: a field renamed in a copy of the .proto is caught."""
    text = (ROOT / gen_proto.PROTO).read_text(encoding="utf-8")
    changed = tmp_path / "proxy" / "ws"
    changed.mkdir(parents=True)
    (changed / "mexc_push.proto").write_text(text.replace("string avgPrice = 6;", "string avgPrize = 6;"))
    monkeypatch.setattr(gen_proto, "ROOT", tmp_path)
    assert gen_proto.descriptor_from_proto() != gen_proto.descriptor_of_module()


def _mexc_messages() -> dict[str, Descriptor]:
    out: dict[str, Descriptor] = {}
    for info in pkgutil.iter_modules(ccxt_mexc.__path__):
        module = importlib.import_module(f"{ccxt_mexc.__name__}.{info.name}")
        out.update(module.DESCRIPTOR.message_types_by_name)
    return out


def _shape(f: FieldDescriptor) -> tuple:
    target = f.message_type.name if f.message_type is not None else None
    return (f.number, f.type, f.is_repeated, f.has_presence, target)


def test_every_field_of_mexcs_classes_is_in_ours_at_the_same_number_and_type() -> None:
    theirs = _mexc_messages()
    mine = ours.DESCRIPTOR.message_types_by_name
    assert len(theirs) >= 20 and "PrivateOrdersV3Api" in theirs
    for name, desc in theirs.items():
        assert name in mine, f"{name} is missing from our .proto"
        our_fields = mine[name].fields_by_name
        for f in desc.fields:
            assert f.name in our_fields, f"{name}.{f.name} is missing from our .proto"
            assert _shape(our_fields[f.name]) == _shape(f), f"{name}.{f.name} differs"
    wrapper = mine["PushDataV3ApiWrapper"]
    assert [f.name for f in wrapper.oneofs_by_name["body"].fields] == [
        f.name for f in theirs["PushDataV3ApiWrapper"].oneofs_by_name["body"].fields
    ]


def test_ours_have_their_own_package_and_file() -> None:
    assert ours.DESCRIPTOR.package == "mexc_paper.push.v3"
    assert ours.DESCRIPTOR.name == "proxy/ws/mexc_push.proto"
    theirs = _mexc_messages()["PushDataV3ApiWrapper"]
    assert theirs.file.package == "" and theirs.file.name != ours.DESCRIPTOR.name
    assert theirs.full_name != ours.PushDataV3ApiWrapper.DESCRIPTOR.full_name
