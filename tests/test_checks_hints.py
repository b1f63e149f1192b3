"""Graded hints: an exercise not attempted yet never prints its answer.

The answer lines are the lines of each worked solution (``tinyml_helpers/solutions/*``) that
are not already in the exercise cell the learner starts from. Neither a hint's nudge nor
anything a check prints for a not-attempted exercise may contain one of them, or one of
their parenthesised sub-expressions (``(9 + 8 + 8)`` gives the count away as surely as the
whole line).
"""
from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from tinyml_helpers.checks import Hint, all_hints, check_value, hint
from tinyml_helpers.checks import classical, cost, deploy, distillation, export, pruning, scaling
from tinyml_helpers.solutions import solution_blocks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _exercise_cells(nb: Path) -> dict[str, str]:
    cells = json.loads(nb.read_text())["cells"]
    out = {}
    for c in cells:
        src = "".join(c["source"])
        m = re.match(r"# EXERCISE (\S+)", src)
        if m:
            out[m.group(1)] = src
    return out


def _answer_fragments() -> dict[str, set[str]]:
    """exercise id -> normalised answer lines and their parenthesised sub-expressions."""
    frags: dict[str, set[str]] = {}
    for nb in NOTEBOOKS:
        starts = _exercise_cells(nb)
        for ex_id, block in solution_blocks(nb.stem).items():
            given = {_norm(line) for line in starts.get(ex_id, "").splitlines()}
            keep = set()
            for line in block.splitlines():
                code = line.split("#", 1)[0].strip()
                if not code or _norm(code) in given or code.startswith(("def ", "check", "checks.", "th_checks.",
                                                                          "import ", "from ", "for ", "print(")):
                    continue
                code = re.sub(r"^(return\s+|[\w\s,\[\]]+=\s*)", "", code)   # the expression is the answer
                if len(_norm(code)) >= 8:
                    keep.add(_norm(code))
                keep |= {_norm(p) for p in re.findall(r"\([^()]{5,}\)", code)}
            frags[ex_id] = keep
    return frags


ANSWERS = _answer_fragments()
HINTS = all_hints()


def test_every_exercise_with_a_solution_has_a_graded_hint():
    missing = sorted(set(ANSWERS) - set(HINTS))
    assert not missing, f"exercises without a graded Hint: {missing}"
    assert all(isinstance(h, Hint) and h.nudge and h.full and h.nudge != h.full for h in HINTS.values())


@pytest.mark.parametrize("ex_id", sorted(HINTS))
def test_nudge_gives_no_answer_line(ex_id):
    nudge = _norm(HINTS[ex_id].nudge)
    leaked = [f for f in ANSWERS.get(ex_id, ()) if f in nudge]
    assert not leaked, f"{ex_id}: the nudge contains the answer {leaked}"


def _not_attempted(*_a, **_k):
    return None


NOT_ATTEMPTED_CALLS = {
    "00.audio_rate": lambda: cost.check_audio_rate(_not_attempted),
    "00.conv_macs": lambda: cost.check_conv_macs(_not_attempted),
    "00.int8_flash": lambda: cost.check_int8_flash(_not_attempted),
    "00.frame_budget": lambda: cost.check_frame_budget(_not_attempted),
    "01.soft_labels": lambda: distillation.check_soft_labels(_not_attempted),
    "01.kd_loss": lambda: distillation.check_kd_loss(_not_attempted),
    "02.magnitude_prune": lambda: pruning.check_magnitude_prune(_not_attempted),
    "02.csr_bytes": lambda: pruning.check_csr_bytes(_not_attempted),
    "03.blob_moments": lambda: classical.check_blob_moments(_not_attempted),
    "03.cleaning_ops": lambda: classical.check_cleaning_ops(...),
    "03.svm_ops": lambda: classical.check_svm_ops(_not_attempted),
    "04.block_cost": lambda: scaling.check_block_cost(_not_attempted),
    "04.alpha_for_macs": lambda: scaling.check_alpha_for_macs(_not_attempted),
    "05.quantize_dequantize": lambda: export.check_round_trip(_not_attempted, _not_attempted, x=[0.0], scale=0.1,
                                                              zero_point=0),
    "05.symmetric_scale": lambda: export.check_symmetric_scale(_not_attempted),
    "05.expected_int8_bytes": lambda: export.check_expected_int8_bytes(_not_attempted),
    "06.arena_size": lambda: deploy.check_arena_lower_bound(_not_attempted),
    "06.requantize": lambda: deploy.check_requantize(_not_attempted),
}


@pytest.mark.parametrize("ex_id", sorted(NOT_ATTEMPTED_CALLS))
def test_not_attempted_output_gives_no_answer(ex_id, monkeypatch):
    monkeypatch.delenv("TINYML_EXPECT_SOLVED", raising=False)
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert NOT_ATTEMPTED_CALLS[ex_id]() is False
    out = buf.getvalue()
    assert "not attempted" in out and "Hint:" in out
    printed = _norm(out)
    answers = set().union(*(ANSWERS.get(i, set()) for i in ANSWERS if i.split(".")[0] == ex_id.split(".")[0]))
    leaked = [f for f in answers if f in printed]
    assert not leaked, f"{ex_id}: a not-attempted check printed an answer: {leaked}\n{out}"
    assert HINTS.get(ex_id, Hint("", "")).full not in out or ex_id not in HINTS


def test_every_solved_exercise_is_covered_here():
    assert set(ANSWERS) <= set(NOT_ATTEMPTED_CALLS) | {"03.cleaning_ops"}


def test_wrong_attempt_gets_nudge_diagnosis_and_full_line(monkeypatch):
    monkeypatch.delenv("TINYML_EXPECT_SOLVED", raising=False)
    buf = io.StringIO()
    with redirect_stdout(buf):
        pruning.check_csr_bytes(lambda rows, cols, nnz, v, i, p: nnz * v)   # forgot indices and pointers
    out = buf.getvalue()
    assert HINTS["02.csr_bytes"].nudge in out and HINTS["02.csr_bytes"].full in out


def test_hint_on_request_prints_the_full_line(capsys):
    text = hint("00.conv_macs")
    assert HINTS["00.conv_macs"].full in text and HINTS["00.conv_macs"].full in capsys.readouterr().out
    with pytest.raises(KeyError):
        hint("99.nothing")


def test_a_plain_string_hint_is_a_diagnosis_shown_as_is(capsys):
    check_value("demo.x", 3, 4, hint="you added instead of multiplying")
    assert "you added instead of multiplying" in capsys.readouterr().out
