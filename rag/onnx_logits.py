"""Logits for the last few positions only, in an ONNX Runtime GenAI export.

The builder's graph multiplies every position of a prompt by the output embedding (49,152 x 576
for SmolLM2: ~57 MFLOP a position, a fifth of an 800-token prefill), although a reply needs the
last position's logits and a drafted step (rag.onnx_generation.lookup_draft) the last few.
ONNX Runtime GenAI allocates the `logits` output at the input's length before each run, so the
edited graph keeps that shape: it computes the last KEPT_POSITIONS positions and pads the rest
with zeros (the Pad took 3% of an 880-token prefill in ONNX Runtime's profile, bench/RESULTS.md).
"""

from __future__ import annotations

import os
from pathlib import Path

KEPT_POSITIONS = 16
MARKER = "logits-last-positions"  # a file in an export's directory: the edit is made


def keep_last_logits(export: Path) -> bool:
    """Edit `export`/model.onnx in place (atomically) so that only the last KEPT_POSITIONS
    positions' logits are computed. False, leaving the graph as it is, where the logits do not
    come from one MatMul (a model whose output head the builder writes otherwise)."""
    import onnx
    from onnx import TensorProto, helper

    if (export / MARKER).is_file():
        return True
    model = onnx.load(str(export / "model.onnx"), load_external_data=False)
    graph = model.graph
    head = next((node for node in graph.node if "logits" in node.output), None)
    if head is None or head.op_type not in ("MatMul", "MatMulNBits"):  # fp32; int4
        return False
    hidden = head.input[0]
    graph.initializer.extend([
        helper.make_tensor("kept_starts", TensorProto.INT64, [1], [-KEPT_POSITIONS]),
        helper.make_tensor("kept_ends", TensorProto.INT64, [1], [2**62]),
        helper.make_tensor("kept_axis", TensorProto.INT64, [1], [1]),
        helper.make_tensor("kept_zero", TensorProto.INT64, [1], [0]),
        helper.make_tensor("kept_zeros", TensorProto.INT64, [4], [0, 0, 0, 0]),
    ])
    before = [
        helper.make_node("Slice", [hidden, "kept_starts", "kept_ends", "kept_axis"], ["kept_hidden"]),
        helper.make_node("Shape", [hidden], ["all_shape"]),
        helper.make_node("Shape", ["kept_hidden"], ["kept_shape"]),
        helper.make_node("Gather", ["all_shape", "kept_axis"], ["all_length"], axis=0),
        helper.make_node("Gather", ["kept_shape", "kept_axis"], ["kept_length"], axis=0),
        helper.make_node("Sub", ["all_length", "kept_length"], ["dropped_length"]),
        # Pad's pads: begin of each of the 3 axes, then end: zeros before the kept positions
        helper.make_node("Concat", ["kept_zero", "dropped_length", "kept_zeros"], ["logits_pads"], axis=0),
    ]
    at = list(graph.node).index(head)
    for offset, node in enumerate(before):
        graph.node.insert(at + offset, node)
    head.input[0] = "kept_hidden"
    head.output[0] = "kept_logits"
    after = helper.make_node("Pad", ["kept_logits", "logits_pads"], ["logits"], mode="constant")
    graph.node.insert(list(graph.node).index(head) + 1, after)
    staged = export / "model.onnx.part"
    onnx.save(model, str(staged))  # external data stays where it is: the graph names its file
    os.replace(staged, export / "model.onnx")
    (export / MARKER).write_text(f"{KEPT_POSITIONS}\n")
    return True
