"""Translation and the verification sweep: translations prove themselves and round-trip exactly
through every installed framework, layer strings are parsed (never evaluated), the sweep counts and
shrinks what it finds, and the verbs keep the CLI's contract."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from cli_support import run
from convarith import BoundLayer, ConvArithError, Layer, check
from convarith.frameworks import ADAPTERS, adapter, installed
from convarith.frameworks.base import build, max_difference, tolerance
from convarith.frameworks.translate import parse, translate
from convarith.frameworks.verify import Report, read_back, verify
from strategies import bound_layers, examples

TARGETS = tuple(name for name in ADAPTERS if installed(name))


def _accepted(bound: BoundLayer, *frameworks: str) -> bool:
    return not any(
        f.severity == "error" for fw in frameworks for f in check(bound.layer, bound.input_shape, framework=fw)
    )


@pytest.mark.parametrize("target", TARGETS)
# JAX compiles every new shape (~0.5 s a case); Keras refuses many drawn layers
@settings(examples(60), suppress_health_check=[HealthCheck.filter_too_much])
@given(bound=bound_layers(forms=(2,)), seed=st.integers(0, 2**16))
# found by CI: a crop of a whole 1-cell input beside a pad (Keras refuses the crop when it comes first)
@example(
    bound=Layer(
        "conv_transpose3d", 1, 1, kernel_size=1, padding="same_lower", dilation=(2, 1, 1), output_padding=(1, 0, 0)
    ).bind((1, 1, 1, 1, 1)),
    seed=0,
)
# found by the 20,000-case sweep: DepthwiseConv1D (Keras' stride with dilation) takes no 'causal'; a pool's
# crop of a whole 1-cell input before its padding
@example(bound=Layer("conv1d", 1, 1, kernel_size=2, stride=2, padding="causal", dilation=3).bind((1, 1, 1)), seed=0)
@example(
    bound=Layer("avg_pool2d", kernel_size=1, stride=(1, 3), padding=(0, 1), ceil_mode=True).bind((1, 1, 1, 1)), seed=0
)
def test_torch_to_x_to_torch_is_exact(target: str, bound: BoundLayer, seed: int) -> None:
    """A PyTorch layer written in X computes its values; where X holds it in one layer or call, that
    reads back as a layer which, written in PyTorch again, computes PyTorch's values exactly (to
    float64 rounding, as a padded copy may sum in another order)."""
    assume(_accepted(bound, "torch", target))
    there = translate(bound.layer, target, input_shape=bound.input_shape)
    verdict = there.check(seed=seed)
    assert verdict.passed, verdict
    rng = np.random.default_rng(seed)
    x, w, b = (
        None if s is None else rng.standard_normal(s) for s in (bound.input_shape, bound.weight_shape, bound.bias_shape)
    )
    back = read_back(adapter(target), there.emitted, build(there.emitted, w, b), bound.layer)
    if back is None:
        return  # several pieces, or nothing to read back: the check above compared the values
    torch_adapter = adapter("torch")
    original = torch_adapter.emit(bound.layer, bound.input_shape)
    home = translate(back, "torch", input_shape=bound.input_shape)
    want = torch_adapter.apply(original, build(original, w, b), x)
    got = torch_adapter.apply(home.emitted, home.make(w, b if back.bias else None), x)
    assert max_difference(got, want) <= tolerance("float64", want, 1)


def test_every_translation_of_the_issue_example_checks_itself() -> None:
    for target in TARGETS:
        t = translate("nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1)", to=target, input_shape=(1, 64, 8, 8))
        verdict = t.check()
        assert verdict.passed and verdict.output_shape == (1, 32, 16, 16), (target, verdict)
        assert "def make(weight, bias=None)" in t.code


def test_the_check_catches_a_wrong_translation() -> None:
    """The self-check must be able to fail: a translation whose code flips the kernel is caught."""
    t = translate(Layer("conv1d", 1, 1, kernel_size=3, bias=False), "torch", input_shape=(1, 1, 8))
    wrong = t.emitted.build.replace("torch.from_numpy(w)", "torch.from_numpy(w[..., ::-1].copy())")
    broken = type(t)(
        t.source, t.target, t.layer, t.input_shape, type(t.emitted)(**{**t.emitted.__dict__, "build": wrong}), None
    )
    assert not broken.check().passed


def test_strings_are_read_in_each_frameworks_syntax_and_never_evaluated() -> None:
    assert parse("nn.Conv2d(3, 16, 3, stride=2, padding=1)")[0] == "torch"
    assert parse("torch.nn.functional.conv1d((1, 4, 9), (8, 4, 3))")[2] == (1, 4, 9)
    for text, rule in [
        ("__import__('os').system('true')", "must call a layer by its name"),
        ("nn.Conv2d(3, 16, k)", "kernel_size: must be an integer"),
        ("nn.Conv2d(3, 16, 3, stride=open('x'))", "must be a literal"),
        ("os.system('true')", "names no layer convarith reads"),
        ("nn.Conv2d(*args)", "must not use * or **"),
        ("x" * 3000, "at most 2000 characters"),
    ]:
        with pytest.raises(ConvArithError, match=rule.replace("*", r"\*")):
            got = parse(text)
            raise AssertionError(f"parsed {text!r} as {got}")


def test_a_target_that_refuses_names_its_rule() -> None:
    with pytest.raises(ConvArithError, match=r"output_padding: .*\(PyTorch refuses this layer\)"):
        translate(Layer("conv_transpose1d", 1, 1, kernel_size=3, stride=2, output_padding=2), "torch")


# -- the sweep -----------------------------------------------------------------------------------


def test_verify_counts_every_case_in_every_runner() -> None:
    report = verify(["torch", "onnx"], cases=25, seed=3)
    assert report.passed and report.cases == 25
    for runner in ("torch", "onnx"):
        assert report.count(runner) == 25
        assert report.count(runner, status="agree") + report.count(runner, status="refused") == 25
    # half the layers lie beyond PyTorch's limits: ONNX computes more of them than PyTorch accepts
    assert report.count("onnx", status="agree") > report.count("torch", status="agree") >= 5
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data["runners"]) == {"torch", "onnx"} and data["runners"]["torch"]["version"].startswith("2.")


def test_verify_is_reproducible_from_its_seed() -> None:
    one, two = verify(["torch"], cases=15, seed=9), verify(["torch"], cases=15, seed=9)
    assert one.counts == two.counts


def test_a_mismatch_is_shrunk_to_a_runnable_reproducer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A known bug is listed with its reproducer; run, the reproducer shows the disagreement."""
    report = verify(["onnx-ref"], cases=120, seed=1, ops=["conv_transpose"])
    assert report.passed and report.known, "the reference evaluator's grouped ConvTranspose bug should be hit"
    bug = report.known[0]
    assert bug.known_bug.startswith("reference-grouped-convtranspose")
    proc = subprocess.run([sys.executable, "-c", bug.reproducer], capture_output=True, text=True, timeout=120)
    assert "'status': 'mismatch'" in proc.stdout


def test_verify_refuses_bad_arguments() -> None:
    with pytest.raises(ConvArithError, match="frameworks"):
        verify(["caffe"], cases=1)
    with pytest.raises(ConvArithError, match="cases"):
        verify(["torch"], cases=0)
    with pytest.raises(ConvArithError, match="ops"):
        verify(["torch"], cases=1, ops=["deconv"])
    assert isinstance(Report(("torch",), {}), Report)


def test_the_sweep_imports_no_framework_in_the_calling_process() -> None:
    code = (
        "import sys\n"
        "from convarith.frameworks.verify import verify\n"
        "assert verify(['torch', 'onnx'], cases=3).passed\n"
        "print([m for m in ('torch', 'jax', 'keras', 'onnx', 'onnxruntime', 'tensorflow') if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert proc.stdout.strip().endswith("[]")


# -- the verbs -----------------------------------------------------------------------------------


def test_translate_verb_prints_code_and_its_check() -> None:
    got = run("translate", "nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1)", "--to", "onnx")
    assert got.code == 0, got.err
    assert "ConvTranspose(kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1])" in got.out
    assert "def make(weight, bias=None):" in got.out and "check equal" in got.out


def test_translate_verb_json_runs_as_printed() -> None:
    got = run("translate", "nn.Conv1d(4, 8, 5, dilation=2, padding=3)", "--to", "torch,onnx", "--json")
    assert got.code == 0, got.err
    entries = json.loads(got.out)
    for entry in entries:
        assert entry["check"]["passed"] is True
        namespace: dict[str, object] = {}
        exec(compile(entry["code"], "<printed>", "exec"), namespace)  # test-only: the code we printed
        layer = namespace["make"](np.ones((8, 4, 5)), np.zeros(8))  # type: ignore[operator]
        assert layer is not None


@pytest.mark.parametrize(
    ("args", "start"),
    [
        (["translate", "nn.Conv2d(3, 16, 3, stride=0)"], "error: LAYER: stride: must be at least 1"),
        (["translate", "import os"], "error: LAYER: must be one call"),
        (["translate", "nn.Conv2d(3, 16, 3)", "--to", "caffe"], "error: --to: must be one of"),
        (["translate", "nn.Conv2d(3, 16, 3)", "-i", "1x2x3x4x5"], "error: -i: conv2d takes 2 spatial size(s)"),
        (
            ["translate", "nn.ConvTranspose1d(1, 1, 3, stride=2, output_padding=2)", "--to", "onnx"],
            "error: LAYER: output_padding: must be smaller than stride",
        ),
        (["check", "nn.Conv2d(3, 16, 3)", "--framework", "caffe"], "error: --framework: must be one of"),
        (["verify", "--frameworks", "caffe", "--cases", "1"], "error: --frameworks: must name runners"),
        (["verify", "--cases", "0"], "error: --cases: must be an integer from 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], start: str) -> None:
    got = run(*args)
    assert got.code == 2, (got.out, got.err)
    assert got.err.startswith(start), got.err
    assert got.err.count("\n") == 1 and "Traceback" not in got.err


def test_check_verb_answers_before_running_anything() -> None:
    got = run("check", "nn.MaxPool1d(2, padding=2)", "--framework", "torch,onnx", "--json")
    assert got.code == 0, got.err
    data = json.loads(got.out)
    assert data["frameworks"]["torch"]["accepts"] is False
    assert "half the kernel" in data["frameworks"]["torch"]["findings"][0]["message"]


def test_verify_verb_summarises_and_exits_0_when_all_agree() -> None:
    got = run("verify", "--frameworks", "torch,onnx", "--cases", "20", "--seed", "2")
    assert got.code == 0, got.err
    assert "20 random cases" in got.out and "passed" in got.out
    data = json.loads(run("verify", "--frameworks", "torch", "--cases", "5", "--json").out)
    assert data["passed"] is True and data["cases"] == 5
