"""Deployment: int8 ONNX -> C -> Cortex-M4 firmware -> emulated run -> measured figures.

Submodules: :mod:`.quant` (fixed-point arithmetic, NumPy reference kernels),
:mod:`.codegen` (C from an int8 QOperator ONNX graph, arena plan), :mod:`.schedule`
(memory-saving schedules: patch-based execution of the first layers, MCUNetV2),
:mod:`.seed_pick` (the deck's PhiNet pick deployed patch by patch in 392 KB), :mod:`.toolchain`
(ziglang cross-compiler, startup code, linker script), :mod:`.emulator` (unicorn Cortex-M4
runner: outputs, instruction counts, stack painting), :mod:`.measure` (flash/RAM from the
ELF), :mod:`.pipeline` (the whole chain in one call), :mod:`.timing` (the Cortex-M4 cycle
model), :mod:`.kernel_costs` (measured cycles per layer kind, shipped for the solver). Audio in, keyword out
on the chip: :mod:`.frontend` (the log-mel front end's tables for ``kernels/tm_frontend.c``),
:mod:`.streaming` (rings, schedule and decisions of ``kernels/tm_stream.c``; feeding samples
like a DMA), :mod:`.frontend_costs` (the front end's measured cycles per frame, shipped for
notebook 00), :mod:`.audio_input` (any recording -> mono int16 at 16 kHz) and
:mod:`.say_keyword` (notebook 06's microphone widget).

Example:
    >>> from tinyml_helpers.deploy import quant
    >>> quant.quantize_multiplier(0.5)
    (1073741824, 31)
"""
