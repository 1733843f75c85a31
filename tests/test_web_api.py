"""The explorer's data (what the page draws) against PyTorch and the matrix C, and its server's guards."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, example, given, reject
from hypothesis import strategies as st
from starlette.testclient import TestClient

from convarith import BoundLayer, ConvArithError, Layer
from convarith.ops.matrix import conv_matrix, pool_matrix
from convarith.web.app import CSP, MAX_BODY, create_app
from convarith.web.payload import describe, unpacked
from convarith.web.state import read_state, state_for
from oracle_torch import Unsupported, run_torch
from strategies import bound_layers, examples, layers, torch_valid


def state_of(bound: BoundLayer, **extra: Any) -> dict[str, Any]:
    """The JSON the page would send for a bound layer."""
    return state_for(bound.layer, bound.input_shape) | extra


def drawable(**options: Any) -> st.SearchStrategy[BoundLayer]:
    """Layers PyTorch runs that the page draws (1-d and 2-d, no divisor_override)."""
    chosen = layers(ndims=(1, 2), **options).filter(lambda layer: layer.divisor_override is None)
    return bound_layers(chosen).map(torch_valid)


def dense_from_entries(page: dict[str, Any], bound: BoundLayer, weight: np.ndarray) -> np.ndarray:
    """The layer's matrix rebuilt from the page's (row, column, tap) entries and PyTorch's weight layout."""
    m = page["matrix"]
    dense = np.zeros((m["rows"], m["cols"]))
    n_in, n_out = math.prod(bound.input_spatial), math.prod(bound.output_spatial)
    g = bound.layer.groups
    for row, col, tap in zip(unpacked(m["row"]), unpacked(m["col"]), unpacked(m["tap"]), strict=True):
        oc, ic = row // n_out, col // n_in
        if bound.transposed:  # weight (in, out/groups, *k)
            w = weight[ic, oc % (bound.out_channels // g)]
        else:  # weight (out, in/groups, *k)
            w = weight[oc, ic % (bound.in_channels // g)]
        dense[row, col] += w.ravel()[tap]
    return dense


@examples(150)
@given(drawable(kinds=("conv", "conv_transpose")), st.sampled_from(["direct", "scatter"]), st.integers(0, 2**16))
@example(
    Layer("conv2d", 2, 4, kernel_size=3, groups=2, padding_mode="reflect", padding=2).bind((1, 2, 4, 5)), "direct", 0
)
def test_the_matrix_the_page_draws_is_c(bound: BoundLayer, view: str, seed: int) -> None:
    assume(view == "direct" or bound.transposed)
    page = describe(read_state(state_of(bound, view=view)))
    weight = np.random.default_rng(seed).standard_normal(bound.weight_shape)
    want = conv_matrix(bound, weight, format="dense")
    assert page["shapes"]["output"] == [1, bound.out_channels, *bound.output_spatial]
    assert page["matrix"]["entries"] == len(unpacked(page["matrix"]["row"]))
    np.testing.assert_allclose(dense_from_entries(page, bound, weight), want, atol=1e-12)


@examples(60)
@given(drawable(kinds=("max_pool", "avg_pool")))
def test_the_windows_the_page_draws_are_the_pool_matrix_s(bound: BoundLayer) -> None:
    layer = bound.layer
    assume(layer.dilation == (1,) * layer.ndim or layer.kind == "avg_pool")
    page = describe(read_state(state_of(bound)))
    as_avg = (
        layer.replace(op=layer.op.replace("max", "avg"), count_include_pad=True) if layer.kind == "max_pool" else layer
    )
    want = pool_matrix(as_avg.bind(bound.input_shape), format="dense") != 0
    drawn = np.zeros_like(want)
    m = page["matrix"]
    drawn[unpacked(m["row"]), unpacked(m["col"])] = True
    assert page["shapes"]["output"] == [1, bound.out_channels, *bound.output_spatial]
    np.testing.assert_array_equal(drawn, want)


@examples(120)
@given(drawable(), st.sampled_from(["direct", "scatter"]), st.integers(0, 999), st.booleans())
def test_numeric_mode_computes_what_pytorch_computes(bound: BoundLayer, view: str, seed: int, flip: bool) -> None:
    assume(view == "direct" or bound.transposed)
    page = describe(read_state(state_of(bound, view=view, numeric=True, seed=seed, flip=flip)))
    values = page["values"]
    x = torch.tensor(values["input"], dtype=torch.float64).reshape(1, *bound.sample_input_shape)
    w = None
    if bound.weight_shape is not None:
        w = torch.tensor(values["weight"], dtype=torch.float64).reshape(bound.weight_shape)
        if flip:  # the page shows the kernel of a true convolution; the cross-correlation uses it rotated
            w = torch.flip(w, dims=tuple(range(2, w.ndim)))
    try:
        want = run_torch(bound, x, w)[0].numpy().reshape(bound.out_channels, -1)
    except Unsupported:
        reject()
    upper = page["grids"]["upper"]
    shown = np.array([np.nan if v is None else v for v in values["upper"]], dtype=float)
    shown = shown.reshape(upper["channels"], -1)
    # each output cell: where the upper grid holds it (the scatter view draws the full extent with crops)
    at = {s: i for i, s in enumerate(unpacked(upper["source"]).tolist()) if s >= 0}
    got = shown[:, [at[o] for o in range(math.prod(bound.output_spatial))]]
    np.testing.assert_allclose(got, want, atol=1e-9)
    if view == "direct":
        np.testing.assert_allclose(np.array(values["frame"]).reshape(want.shape), want, atol=1e-9)


def test_values_the_user_gives_are_used() -> None:
    state = {"op": "conv2d", "input_shape": [3, 4], "in_channels": 2, "out_channels": 1, "kernel_size": [2, 2]}
    x = np.arange(24.0) - 5
    w = np.arange(8.0) * 0.5
    page = describe(read_state(state | {"numeric": True, "input_values": x.tolist(), "kernel_values": w.tolist()}))
    want = F.conv2d(torch.from_numpy(x.reshape(1, 2, 3, 4)), torch.from_numpy(w.reshape(1, 2, 2, 2)))
    np.testing.assert_allclose(page["values"]["upper"], want.numpy().ravel())
    assert page["values"]["input"] == x.tolist()


def test_flip_shows_the_kernel_numeric_mode_uses_and_computes_with_it_rotated() -> None:
    state = {"op": "conv2d", "input_shape": [4, 5], "kernel_size": [2, 3], "numeric": True, "seed": 4}
    plain, flipped = describe(read_state(state)), describe(read_state(state | {"flip": True}))
    assert flipped["values"]["weight"] == plain["values"]["weight"]  # the same seed, the same kernel drawn
    assert flipped["values"]["input"] == plain["values"]["input"]
    x = torch.tensor(plain["values"]["input"]).reshape(1, 1, 4, 5)
    w = torch.tensor(plain["values"]["weight"]).reshape(1, 1, 2, 3)
    want = F.conv2d(x, torch.flip(w, dims=(2, 3)))
    np.testing.assert_allclose(flipped["values"]["upper"], want.numpy().ravel())
    assert flipped["values"]["upper"] != plain["values"]["upper"]


def test_the_guide_figure_numbers() -> None:
    """The guide's figure 4.6 (i′=3, k=3, s=2, p=1, a=1): an 8 × 8 drawn input, a 6 × 6 output."""
    page = describe(
        read_state(
            {"op": "conv_transpose2d", "input_shape": [3, 3], "kernel_size": 3, "stride": 2, "padding": 1}
            | {"output_padding": 1}
        )
    )
    assert page["grids"]["lower"]["shape"] == [8, 8]
    assert page["grids"]["lower"]["kinds"][8:16] == "pizizipe"  # the second row: an input row
    assert page["shapes"]["output"] == [1, 1, 6, 6]
    assert page["axes"][0]["relationship"]["number"] == 14
    assert {f["code"] for f in page["findings"]} >= {"uneven-overlap"}


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"kernel_size": 0}, "kernel_size"),
        ({"kernel_size": [3]}, "kernel_size"),
        ({"input_shape": [500, 5]}, "input_shape"),
        ({"stride": 2.5}, "stride"),
        ({"stride": True}, "stride"),
        ({"op": "conv9d"}, "op"),
        ({"op": "__import__('os')"}, "op"),
        ({"padding": "same_as_tf"}, "padding"),
        ({"padding": [[1, 1], [1]]}, "padding"),
        ({"groups": 2}, "groups"),
        ({"input_shape": [2, 2], "padding": 0}, "input_shape"),
        ({"numeric": "yes"}, "numeric"),
        ({"input_values": [1, 2]}, "input_values"),
        ({"input_values": [float("nan")] * 25}, "input_values"),
        ({"evil": 1}, "request"),
        ({"framework": "caffe"}, "framework"),
        ({"in_channels": 64}, "in_channels"),
    ],
)
def test_bad_state_is_refused_naming_the_field(change: dict[str, Any], param: str) -> None:
    data = {"op": "conv2d", "input_shape": [5, 5], "kernel_size": [3, 3], "in_channels": 1} | change
    with pytest.raises(ConvArithError) as err:
        describe(read_state(data))
    assert err.value.param == param, str(err.value)


def test_the_framework_s_rules_and_code_are_the_framework_s() -> None:
    data = {"op": "conv2d", "input_shape": [6, 6], "kernel_size": 3, "stride": 2, "padding": [[1, 2], [0, 0]]}
    keras = describe(read_state(data | {"framework": "keras"}))
    assert [f["code"] for f in keras["framework"]["findings"]] == ["needs-workaround"]
    assert keras["code"]["keras"]["steps"][0].startswith("keras.layers.ZeroPadding2D(((1, 2), (0, 0)))")
    torch_page = describe(read_state(data))
    assert [f["code"] for f in torch_page["framework"]["findings"]] == ["inexpressible-padding"]
    assert set(torch_page["code"]) == {"torch", "keras", "jax", "onnx", "tf"}


# -- the server --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(["testserver"]))


def test_the_page_and_its_files_come_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'src="/static/page.js"' in page.text
    assert page.headers["content-security-policy"] == CSP and "script-src 'self'" in CSP
    assert "unsafe" not in CSP
    script = client.get("/static/explorer.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    for path in ("/static/app.py", "/static/..%2fapp.py", "/static/../../pyproject.toml", "/etc/passwd"):
        assert client.get(path).status_code == 404, path


def test_a_foreign_host_is_refused(client: TestClient) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 still sends its own Host header."""
    response = client.get("/", headers={"host": "evil.example:8000"})
    assert response.status_code == 421
    assert client.post("/api/layer", json={}, headers={"host": "evil.example"}).status_code == 421


def test_the_api_answers_and_refuses_in_one_line(client: TestClient) -> None:
    good = client.post("/api/layer", json={"op": "conv1d", "input_shape": [7], "kernel_size": 3})
    assert good.status_code == 200 and good.json()["shapes"]["output"] == [1, 1, 5]
    bad = client.post("/api/layer", json={"op": "conv1d", "input_shape": [7], "kernel_size": 9})
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "input_shape", bad.json()
    assert "\n" not in bad.json()["error"]["message"]
    not_json = client.post("/api/layer", content=b"{op: conv1d", headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["error"]["param"] == "request"
    deep = client.post("/api/layer", content=b"[" * 100_000, headers={"content-type": "application/json"})
    assert deep.status_code == 400
    huge = client.post("/api/layer", content=b" " * (MAX_BODY + 1), headers={"content-type": "application/json"})
    assert huge.status_code == 413
    assert client.get("/api/layer").status_code == 405


def test_the_solver_answers(client: TestClient) -> None:
    found = client.post("/api/solve", json={"op": "conv_transpose2d", "from": 16, "to": 32}).json()["solutions"]
    assert found, found
    for solution in found:
        assert Layer.from_dict(solution["layer"]).bind((1, 1, 16, 16)).output_spatial == (32, 32)
    refused = client.post("/api/solve", json={"op": "conv2d", "from": 16, "to": 10**9})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "to"


def test_payload_is_plain_json() -> None:
    page = describe(
        read_state({"op": "max_pool2d", "input_shape": [5, 5], "kernel_size": 2, "padding": 1} | {"numeric": True})
    )
    text = json.dumps(page, allow_nan=False)  # -inf padding travels as a string, no NaN
    assert '"-inf"' in text


def test_convarith_serve_serves_until_stopped_and_refuses_bad_flags() -> None:
    import socket
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    command = str(Path(sys.executable).parent / "convarith")
    server = subprocess.Popen([command, "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        url = line.split()[2]
        assert line.startswith("convarith explorer: http://127.0.0.1:"), line
        with urllib.request.urlopen(url, timeout=10) as page:
            assert b'src="/static/page.js"' in page.read()
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        taken = subprocess.run([command, "serve", "--port", str(port)], capture_output=True, text=True, timeout=60)
        assert taken.returncode == 2 and taken.stderr.startswith("error: --port: cannot listen on 127.0.0.1:")
        assert "Traceback" not in taken.stderr and len(taken.stderr.splitlines()) == 1
    finally:
        server.terminate()
        server.wait(timeout=10)
    bad = subprocess.run([command, "serve", "--port", "70000"], capture_output=True, text=True, timeout=60)
    assert (bad.returncode, bad.stderr.strip()) == (2, "error: --port: must be 0 … 65535; got 70000")
    with socket.socket() as probe:  # the port is free again: the server let it go (closed connections may linger)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        probe.listen()
