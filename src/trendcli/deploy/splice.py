"""Black-box members in the exported ensemble: each one's ONNX file spliced into the one graph.

torch.onnx cannot trace onnxruntime, so a black-box network (trendcli.zoo.blackbox) leaves one
``trendcli.blackbox::Member`` placeholder node in the traced graph, with its ``slot``. Here each
placeholder is replaced by the nodes of that member's ONNX file: its names get the prefix
``blackbox<slot>/``, its image input becomes the placeholder's input (the image as the member
sees it, normalized by the torch part of the graph) and its first output the placeholder's
output (the logits, which the torch part then puts in the dataset's class order). The file is
converted to the export's opset first (onnx.version_converter) when the two differ.

The export takes any batch size, so a file with a fixed batch dimension cannot be spliced
(:func:`check_spliceable` says so before any work).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from trendcli.errors import OnnxExportError, UsageError
from trendcli.zoo.blackbox import PLACEHOLDER_DOMAIN, PLACEHOLDER_OP

__all__ = ["check_spliceable", "splice_black_box"]


def _image_input(graph):
    """The graph's first input that is not an initializer (older exporters list weights as inputs)."""
    weights = {i.name for i in graph.initializer}
    return next(i for i in graph.input if i.name not in weights)


def check_spliceable(path: Path, member: str) -> None:
    """UsageError unless the ONNX file of black-box ``member`` takes a dynamic batch."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    batch = _image_input(graph).type.tensor_type.shape.dim[0]
    if batch.HasField("dim_value"):
        raise UsageError(f"member {member} is an ONNX file with a fixed batch of {batch.dim_value}; the exported ensemble "
                         "takes any batch: export the model with a dynamic batch axis and import it again")


def _at_opset(model, opset: int):
    """``model`` converted to ai.onnx ``opset`` (unchanged when it is there already)."""
    from onnx import version_converter

    have = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), opset)
    if have == opset:
        return model
    try:
        return version_converter.convert_version(model, opset)
    except Exception as exc:  # the converter raises its own types for an unsupported step
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise OnnxExportError(f"cannot convert a black-box member from opset {have} to {opset}: {first}") from None


def splice_black_box(proto, networks: Mapping[int, Path], opset: int):
    """``proto`` with every placeholder replaced by the graph of ``networks[slot]`` (module doc)."""
    import onnx
    from onnx import compose

    graph = proto.graph
    nodes = list(graph.node)
    out_nodes = []
    extra_opsets: dict[str, int] = {}
    for node in nodes:
        if node.domain != PLACEHOLDER_DOMAIN or node.op_type != PLACEHOLDER_OP:
            out_nodes.append(node)
            continue
        slot = next(a.i for a in node.attribute if a.name == "slot")
        sub = compose.add_prefix(_at_opset(onnx.load(str(networks[slot])), opset), f"blackbox{slot}/")
        rename = {_image_input(sub.graph).name: node.input[0], sub.graph.output[0].name: node.output[0]}
        for sub_node in sub.graph.node:
            for i, name in enumerate(sub_node.input):
                sub_node.input[i] = rename.get(name, name)
            for i, name in enumerate(sub_node.output):
                sub_node.output[i] = rename.get(name, name)
            out_nodes.append(sub_node)
        graph.initializer.extend(sub.graph.initializer)
        graph.sparse_initializer.extend(sub.graph.sparse_initializer)
        graph.value_info.extend(v for v in sub.graph.value_info if v.name not in rename)
        proto.functions.extend(sub.functions)
        for o in sub.opset_import:
            if o.domain not in ("", "ai.onnx"):
                extra_opsets[o.domain] = max(extra_opsets.get(o.domain, 0), o.version)
        proto.ir_version = max(proto.ir_version, sub.ir_version)
    del graph.node[:]
    graph.node.extend(out_nodes)
    kept = [o for o in proto.opset_import if o.domain != PLACEHOLDER_DOMAIN]
    del proto.opset_import[:]
    proto.opset_import.extend(kept)
    for domain, version in extra_opsets.items():
        if not any(o.domain == domain for o in proto.opset_import):
            proto.opset_import.add(domain=domain, version=version)
    return proto
