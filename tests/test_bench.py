"""`tinyalex bench`: runs at a tiny size, reports what it promises, refuses bad input clearly."""
import json
import os
import statistics
import sys

import numpy as np
import pytest

from tinyalex import backend as B
from tinyalex import bench
from tinyalex.cli import main
from tinyalex.models import model_names

@pytest.fixture(autouse=True)
def _no_settling(monkeypatch):
    monkeypatch.setattr(bench, "SETTLE_S", 0.0)     # the pause between frameworks only matters for real timings


TINY = ["bench", "--model", "tiny", "--batch-size", "2", "--quick"]


def test_bench_tiny_writes_json_with_every_section(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(TINY + ["--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res) >= {"config", "machine", "blas", "threads", "gemm", "layers", "step", "memory"}
    assert list(res["layers"]) == bench.layer_names("tiny")
    for row in res["layers"].values():
        assert row["forward_s"] > 0 and row["forward_backward_s"] > 0
    step = res["step"]
    assert step["images_per_s"] == pytest.approx(2 / step["time_s"])
    assert step["multiple_of_floor"] == pytest.approx(step["time_s"] / step["floor_s"])
    assert res["gemm"]["flops_per_s"] > 0
    assert res["memory"]["tinyalex"]["peak_bytes"] > 0
    assert res["threads"]["numpy_blas"] >= 1
    printed = capsys.readouterr().out
    assert "conv1" in printed and "images/s" in printed and "GEMM rate" in printed


def test_bench_layers_option_times_only_the_named_layers():
    res = bench.run_bench(model="tiny", batch=2, layers="conv2,lrn1", repeats=1, warmup=0, step=False,
                          memory=False, gemm_n=64, log=lambda *_: None)
    assert list(res["layers"]) == ["conv2", "lrn1"]
    assert "step" not in res


def test_bench_reference_impl_runs_too():
    res = bench.run_bench(model="tiny", batch=2, layers="pool1", repeats=1, warmup=0, step=False,
                          memory=False, gemm_n=64, impl="reference", log=lambda *_: None)
    assert res["config"]["impl"] == "reference"


def test_unknown_layer_name_lists_the_valid_ones(capsys):
    assert main(TINY + ["--layers", "conv1,conv9", "--no-step", "--no-memory"]) == 2
    err = capsys.readouterr().err
    assert "--layers" in err and "conv9" in err and "conv1, lrn1, pool1" in err


def test_batch_size_zero_is_refused_naming_the_option(capsys):
    assert main(["bench", "--model", "tiny", "--batch-size", "0"]) == 2
    assert "--batch-size" in capsys.readouterr().err


def test_bad_devices_list_is_refused(capsys):
    assert main(TINY + ["--devices", "0,x"]) == 2
    assert "--devices" in capsys.readouterr().err


def test_compare_torch_without_torch_gives_the_install_hint(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)      # makes `import torch` fail
    assert main(TINY + ["--compare", "torch"]) == 2
    err = capsys.readouterr().err
    assert "pip install torch" in err and "optional" in err


def test_cupy_backend_without_cupy_gives_the_backends_error(capsys):
    try:
        B.set_backend("cupy")
        pytest.skip("CuPy and a GPU are present")
    except B.BackendError:
        pass
    finally:
        B.set_backend("numpy")
    assert main(TINY + ["--backend", "cupy"]) == 2
    assert "cupy" in capsys.readouterr().err.lower()


def test_torch_step_net_computes_the_same_logits_as_tinyalex():
    """The torch AlexNet of the bench is the same function: copy the weights, compare the logits."""
    torch = pytest.importorskip("torch")
    net = bench.build_tinyalex_net("tiny", np.float64).eval()
    tnet = bench.build_torch_net("tiny").double().eval()
    with torch.no_grad():
        for name, module in tnet.named_children():
            if hasattr(module, "weight"):
                module.weight.copy_(torch.from_numpy(getattr(net, name).params["W"]))
                module.bias.copy_(torch.from_numpy(getattr(net, name).params["b"]))
        x = np.random.default_rng(0).standard_normal((2, 3, 67, 67)) * 30
        want = tnet(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.forward(x), want, rtol=1e-9, atol=1e-12)


def test_step_matmul_flops_match_alexnets_known_multiply_adds():
    total, per = bench.step_matmul_flops("alexnet", batch=1)
    # conv1: 55*55 outputs x 96 kernels x 11*11*3 weights = 105,415,200 multiply-adds per image;
    # the step does the forward and dW products (no dx for the image)
    assert per["conv1"] == 2 * 105_415_200 * 2
    # fc6: 9216 x 4096 multiply-adds, three products (forward, dW, dx)
    assert per["fc6"] == 2 * 9216 * 4096 * 3
    assert total == sum(per.values())


def test_training_step_under_the_device_standin_makes_no_implicit_host_transfer():
    """The stand-in raises on any implicit device->host conversion: a whole step (forward, loss,
    backward, SGD) runs, and the loss stays a device array until read explicitly."""
    with B.use_backend("standin", 0):
        step, net = bench.make_tinyalex_step("tiny", batch=2)
        before = B.to_host(net.conv2.params["W"]).copy()
        loss = step()
        assert B.is_device_array(loss)
        with pytest.raises(B.ImplicitTransferError):
            float(loss)
        assert np.isfinite(B.to_host(loss))
        assert not np.array_equal(B.to_host(net.conv2.params["W"]), before)


def test_threads_option_sets_blas_elementwise_and_torch_threads_alike():
    res = bench.run_bench(model="tiny", batch=2, layers="pool1", repeats=1, warmup=0,
                          step=False, memory=False, gemm_n=64, threads=1, log=lambda *_: None)
    assert res["threads"]["numpy_blas"] == 1
    assert res["threads"]["tinyalex_elementwise"] == 1


def test_threads_below_one_is_refused():
    with pytest.raises(ValueError, match="--threads"):
        bench.run_bench(model="tiny", batch=2, threads=0, log=lambda *_: None)


def test_two_devices_run_the_two_tower_step_under_the_standin():
    res = bench.run_bench(model="tiny", batch=2, layers="conv1", repeats=1, warmup=0, backend="standin",
                          devices=(0, 1), memory=False, gemm_n=64, log=lambda *_: None)
    assert res["config"]["devices"] == [0, 1]
    assert res["step"]["time_s"] > 0


def test_more_than_two_devices_is_refused(capsys):
    assert main(TINY + ["--devices", "0,1,2"]) == 2
    assert "--devices" in capsys.readouterr().err


def test_count_ops_writes_device_ops_and_host_syncs_per_step_to_json(tmp_path, capsys):
    out = tmp_path / "count.json"
    assert main(["bench", "--model", "tiny", "--batch-size", "2", "--backend", "standin", "--count-ops",
                 "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["device_ops_per_step"] > 0 and res["host_syncs_per_step"] >= 0
    assert sum(res["top_ops"].values()) <= res["device_ops_per_step"]
    assert f"{res['device_ops_per_step']} device operations" in capsys.readouterr().out


def test_count_ops_without_the_standin_is_refused(capsys):
    assert main(["bench", "--model", "tiny", "--count-ops"]) == 2
    assert "--count-ops counts on the CPU stand-in; add --backend standin" in capsys.readouterr().err


def test_count_step_counts_the_steady_state_step_only():
    calls = []

    def step():
        calls.append(1)
        if len(calls) == 2:           # only the second call is counted
            B.to_device(np.ones(2), 0, "standin") + 1
    res = bench.count_step(step)
    assert (res["device_ops_per_step"], res["host_syncs_per_step"]) == (2, 0)
    assert res["top_ops"] == {"to_device": 1, "add": 1}


# --------------------------------------------------------------------------
# Every model `train` builds; tinyalex against PyTorch in separate processes
# --------------------------------------------------------------------------
def test_every_model_train_builds_is_a_bench_model():
    assert set(model_names()) <= set(bench.bench_models())


@pytest.mark.parametrize("model", model_names())
def test_bench_times_the_training_step_of_each_model_train_builds(model, tmp_path):
    out = tmp_path / "b.json"
    assert main(["bench", "--model", model, "--batch-size", "1", "--quick", "--layers", "none", "--no-memory",
                 "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["config"]["model"] == model and res["layers"] == {}
    assert res["step"]["images_per_s"] > 0 and res["step"]["matmul_flops"] > 0


def test_bench_of_a_small_model_has_a_row_per_layer_and_its_floor():
    res = bench.run_bench(model="alexnet-small", batch=2, repeats=1, warmup=0, memory=False, gemm_n=64,
                          log=lambda *_: None)
    assert list(res["layers"]) == bench.layer_names("alexnet-small")
    assert res["step"]["multiple_of_floor"] == pytest.approx(res["step"]["time_s"] / res["step"]["floor_s"])


def test_unknown_model_is_refused_with_the_list_of_models(capsys):
    assert main(["bench", "--model", "alexnet-huge", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "alexnet-huge" in err and all(name in err for name in model_names())


def test_rounds_zero_is_refused(capsys):
    assert main(TINY + ["--compare", "torch", "--rounds", "0"]) == 2
    assert "--rounds must be at least 1" in capsys.readouterr().err


def test_targets_are_the_issues_per_model():
    assert bench.targets("alexnet")["step"] == 0.7            # at most 0.7x PyTorch's step time
    assert bench.targets("alexnet-small")["step"] == 0.5      # at least twice PyTorch's images/s
    assert bench.targets("alexnet-fmnist") == bench.targets("alexnet-small")
    assert "step" not in bench.targets("tiny")


def test_framework_torch_times_the_pytorch_twin_in_this_process():
    pytest.importorskip("torch")
    res = bench.run_bench(model="tiny", batch=2, layers="pool1", repeats=1, warmup=0, memory=False, gemm_n=64,
                          framework="torch", log=lambda *_: None)
    assert res["config"]["framework"] == "torch" and res["machine"]["torch_loaded"]
    assert res["threads"]["torch"] == res["threads"]["numpy_blas"]
    assert res["layers"]["pool1"]["forward_backward_s"] > 0 and res["step"]["time_s"] > 0


def test_a_failed_bench_process_is_reported_in_one_line_with_its_error():
    failing = [sys.executable, "-c", "import sys; sys.exit('tinyalex bench: error: no memory left')", "--json", "x"]
    with pytest.raises(ValueError, match="the torch run of round 2 failed .*no memory left"):
        bench._run_child("torch", 2, failing)


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """One `bench --compare torch` at a tiny size: 2 rounds of alexnet-small at batch 4."""
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("compare") / "c.json"
    assert main(["bench", "--model", "alexnet-small", "--batch-size", "4", "--rounds", "2", "--quick",
                 "--layers", "conv1,lrn1,pool1", "--json", str(out), "--markdown"]
                + ["--compare", "torch"]) == 0
    return json.loads(out.read_text())


def test_compare_runs_each_framework_in_its_own_fresh_process_alternating(compared):
    rounds = [(r["round"], r["framework"]) for r in compared["rounds"]]
    assert rounds == [(1, "tinyalex"), (1, "torch"), (2, "tinyalex"), (2, "torch")]
    pids = [r["result"]["machine"]["pid"] for r in compared["rounds"]]
    assert len(set(pids)) == 4 and os.getpid() not in pids
    assert [r["result"]["machine"]["torch_loaded"] for r in compared["rounds"]] == [False, True, False, True]


def test_compare_step_is_each_sides_median_and_spread_and_the_ratio_of_medians(compared):
    times = {fw: [r["result"]["step"]["time_s"] for r in compared["rounds"] if r["framework"] == fw]
             for fw in ("tinyalex", "torch")}
    st = compared["step"]
    assert (st["time_s"], st["time_min_s"], st["time_max_s"]) == (
        statistics.median(times["tinyalex"]), min(times["tinyalex"]), max(times["tinyalex"]))
    assert (st["torch_time_s"], st["torch_time_min_s"], st["torch_time_max_s"]) == (
        statistics.median(times["torch"]), min(times["torch"]), max(times["torch"]))
    assert st["ratio"] == pytest.approx(st["time_s"] / st["torch_time_s"])
    assert st["images_per_s"] == pytest.approx(4 / st["time_s"])


def test_compare_layer_rows_are_ratios_of_the_medians_over_rounds(compared):
    assert list(compared["layers"]) == ["conv1", "lrn1", "pool1"]
    for name, row in compared["layers"].items():
        torch_runs = [r["result"]["layers"][name]["forward_backward_s"] for r in compared["rounds"]
                      if r["framework"] == "torch"]
        assert row["torch_forward_backward_s"] == statistics.median(torch_runs)
        assert row["ratio_forward_backward"] == pytest.approx(row["forward_backward_s"] / row["torch_forward_backward_s"])


def test_compare_measures_both_peak_memories(compared):
    mem = compared["memory"]
    assert mem["tinyalex"]["peak_bytes"] > 0 and mem["torch"]["peak_bytes"] > 0
    assert mem["ratio"] == pytest.approx(mem["tinyalex"]["peak_bytes"] / mem["torch"]["peak_bytes"])


def test_compare_markdown_shows_each_sides_median_and_spread(compared):
    st = compared["step"]
    text = bench.markdown(compared)
    assert f"| tinyalex step (ms) | {st['time_s'] * 1e3:.0f} ({st['time_min_s'] * 1e3:.0f}-" in text
    assert "median (min-max) of 2 rounds" in text
    assert f"| ratio tinyalex / torch (step time) | {st['ratio']:.2f} | <= 0.5 |" in text


@pytest.mark.parametrize("threads", [1, 2])
def test_the_benched_step_is_split_over_as_many_thread_replicas_as_threads(threads):
    res = bench.run_bench(model="alexnet-small", batch=4, layers="none", repeats=1, warmup=0,
                          memory=False, gemm_n=64, threads=threads, log=lambda *_: None)
    assert res["threads"]["step_replicas"] == threads
