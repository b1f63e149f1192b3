"""The Cortex-M4 timing model (deploy.timing) on micro-benchmarks whose cycle counts the Arm
Cortex-M4 Technical Reference Manual (ARM DDI 0439, Table 3-1 and Table 7-1) states."""
from __future__ import annotations

import pytest

from tinyml_helpers.deploy import timing
from tinyml_helpers.deploy.timing import CortexM4Timing, block_cost, classify

# Encodings from the zig/clang assembler (thumbv7em), little endian.
LDR_R0_R1 = "0868"            # ldr r0, [r1]
LDR_R1_R2 = "1168"            # ldr r1, [r2]
LDR_REG = "8858"              # ldr r0, [r1, r2]
STR_IMM = "5861"              # str r0, [r3, #20]
PUSH5 = "f0b5"                # push {r4, r5, r6, r7, lr}
MOVS10 = "0a20"               # movs r0, #10
SUBS1 = "0138"                # subs r0, #1
BNE_BACK = "fdd1"             # bne .-2 (to the subs)
VDIV = "80ee810a"             # vdiv.f32 s0, s1, s2
VMLA = "00ee810a"             # vmla.f32 s0, s1, s2
VLDR = "90ed000a"             # vldr s0, [r0]
VPUSH4 = "2ded048a"           # vpush {s16-s19}
LDR_POST = "50f8041b"         # ldr r1, [r0], #4
SMLAD = "21fb0230"            # smlad r0, r1, r2, r3
SDIV = "91fbf2f0"             # sdiv r0, r1, r2
POP_PC = "10bd"               # pop {r4, pc}
BX_LR = "7047"                # bx lr
VCVTR = "bdee400a"            # vcvtr.s32.f32 s0, s0
VMOV = "10ee100a"             # vmov r0, s0
LDRD = "d2e90001"             # ldrd r0, r1, [r2]


def cycles(*hexes: str, t: CortexM4Timing = CortexM4Timing()) -> int:
    return block_cost(bytes.fromhex("".join(hexes)), t).cycles


def test_pipelined_loads_and_stores_as_the_trm_states():
    # "LDR R0,[R1]; LDR R1,[R2]: normally three cycles total"; "LDR R0,[R1,R2]; STR R0,[R3,#20]: three"
    assert cycles(LDR_R0_R1, LDR_R1_R2) == 3
    assert cycles(LDR_REG, STR_IMM) == 3
    assert cycles(LDR_R0_R1) == 2 and cycles(STR_IMM) == 2
    assert cycles(STR_IMM, LDR_R0_R1) == 4          # nothing pipelines after a store
    assert cycles(*[LDR_POST] * 8) == 9             # a run of N loads: N + 1


def test_multiply_accumulate_divide_and_multiple_transfers():
    assert cycles(SMLAD) == 1                        # single-cycle MAC (Table 3-1)
    assert cycles(SDIV) == 7                         # 2-12, the model's middle
    assert cycles(SDIV, t=CortexM4Timing(divide_cycles=12)) == 12
    assert cycles(PUSH5) == 6                        # 1 + N
    assert cycles(LDRD) == 3                         # 1 + N, N = 2
    assert cycles(MOVS10, SUBS1) == 2


def test_fpu_timings():
    assert cycles(VDIV) == 14 and cycles(VMLA) == 3 and cycles(VCVTR) == 1 and cycles(VMOV) == 1
    assert cycles(VLDR) == 2 and cycles(VPUSH4) == 5  # VPUSH of 4 registers: 1 + N


def test_branches_pay_the_pipeline_refill():
    t = CortexM4Timing(branch_refill=3)
    assert block_cost(bytes.fromhex(POP_PC), t) == timing.BlockCost(1 + 2 + 3, 1, "always")
    assert block_cost(bytes.fromhex(BX_LR), t).cycles == 4
    cost = block_cost(bytes.fromhex(SUBS1 + BNE_BACK), t)
    assert cost.cycles == 2 and cost.ends == "cond"   # the refill is added only when taken
    assert [k for k, _ in classify(bytes.fromhex(SMLAD + SDIV + VLDR + LDRD))] == ["mul", "div", "vldr", "ldrd"]


def _run(code_hex: str, t: CortexM4Timing, until_offset: int, data: bytes = b"") -> timing.CycleCounter:
    from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
    from unicorn.arm_const import UC_ARM_REG_R0, UC_CPU_ARM_CORTEX_M4

    base = 0x08000000
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M4)
    uc.mem_map(base, 0x10000)
    code = bytes.fromhex(code_hex)
    uc.mem_write(base, code + data)
    uc.reg_write(UC_ARM_REG_R0, base + 0x100)
    uc.mem_write(base + 0x100, bytes(64))
    counter = timing.CycleCounter(uc, lambda a, n: bytes(uc.mem_read(a, n)), t, (base, base + 0x10000))
    counter.install()
    uc.emu_start(base | 1, base + until_offset)
    counter.remove()
    return counter


def test_a_countdown_loop_in_the_emulator():
    # movs r0,#10; 1: subs r0,#1; bne 1b; nop -- 1 + 10 x (1 + 1) + 9 taken branches x P
    for p in (1, 2, 3):
        counter = _run(MOVS10 + SUBS1 + BNE_BACK + "00bf", CortexM4Timing(branch_refill=p), 6)
        assert counter.cycles == 1 + 20 + 9 * p, p
        assert counter.instructions == 21


def test_flash_wait_states_stall_each_new_flash_line():
    # r0 = flash + 0x100: eight sequential word loads read two 16-byte lines
    code = LDR_POST * 8 + "00bf"
    plain = _run(code, CortexM4Timing(), 32).cycles
    slow = _run(code, CortexM4Timing(flash_wait_states=3), 32).cycles
    assert plain == 9 and slow == 9 + 2 * 3


def test_timing_for_mcu_and_bad_parameters():
    assert timing.timing_for_mcu("nRF52840").flash_wait_states == 0
    assert timing.timing_for_mcu("STM32L4R5").flash_wait_states == 5
    with pytest.raises(ValueError, match="Cortex-M0\\+ core"):
        timing.timing_for_mcu("RP2040")
    with pytest.raises(ValueError, match="branch_refill"):
        CortexM4Timing(branch_refill=0)
    with pytest.raises(ValueError, match="divide_cycles"):
        CortexM4Timing(divide_cycles=20)
    with pytest.raises(ValueError, match="flash_wait_states"):
        CortexM4Timing(flash_wait_states=-1)
    with pytest.raises(ValueError, match="flash_line_bytes"):
        CortexM4Timing(flash_line_bytes=3)


def test_latency_energy_from_cycles():
    e = timing.latency_energy(6_400_000, "nRF52840", margin=0.1)
    assert e["latency_s"] == pytest.approx((0.1, 0.11))
    assert e["energy_j"][0] == pytest.approx(6_400_000 * 52e-12 * 3.0)
    assert "energy_j" not in timing.latency_energy(1e6, "STM32L4R5")
    with pytest.raises(ValueError, match="no clock"):
        timing.latency_energy(1e6, "seed example")
    with pytest.raises(ValueError, match="cycles must be positive"):
        timing.latency_energy(0, "nRF52840")
