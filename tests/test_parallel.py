"""symfield.parallel: the scheduler argument, checkpoints that resume, bit-identical results on Dask workers,
and a worker killed mid-run costing a retry, not the result (serial runs are the reference)."""
import os
import signal
import threading
import time

import numpy as np
import pytest

import symfield as sf
from symfield import parallel
from symfield.errors import SpecError, SpecTypeError
from symfield.simulate import kernel_moments, posterior, prior
from symfield.simulate.prior import _prior_task
from symfield.simulate.projected import chunk_moments, combine_moments, moment_tasks, moments_result
from symfield.validation import one_loop_measurements

X = np.random.default_rng(0).standard_normal((3, 4))


@pytest.mark.parametrize("bad, err", [("local:0", SpecError), ("local", SpecError), ("localhost:8786", SpecError),
                                      ("tcp://", SpecError), ("", SpecError), (2, SpecTypeError),
                                      (object(), SpecTypeError)])
def test_scheduler_argument_is_checked(bad, err):
    with pytest.raises(err, match="scheduler"):
        parallel.check_scheduler(bad)
    with pytest.raises(err, match="scheduler"):
        prior(sf.RNN(2), X, 8, 2, seed=0, scheduler=bad)


def test_default_scheduler_context_restores():
    assert parallel.resolve(None) is None
    with parallel.using("serial"):
        assert parallel.resolve(None) is None
    with pytest.raises(SpecError, match="scheduler"):
        parallel.set_default("local:-1")


def test_split_covers_range_in_order():
    for n, parts in ((10, 3), (3, 8), (1, 1), (100, 7)):
        pieces = parallel.split(n, parts)
        assert len(pieces) == min(n, parts)
        assert [i for lo, hi in pieces for i in range(lo, hi)] == list(range(n))
        assert max(hi - lo for lo, hi in pieces) - min(hi - lo for lo, hi in pieces) <= 1


def test_combined_chunk_moments_equal_two_pass_moments():
    """Merged chunk moments (Pébay's pairwise update) against the moments of the pooled data computed directly."""
    x = np.random.default_rng(1).standard_normal((1000, 3)) ** 3 + 2.0
    parts = []
    for lo, hi in ((0, 100), (100, 137), (137, 600), (600, 1000)):
        c = x[lo:hi]
        d = c - c.mean(0)
        parts.append((hi - lo, c.mean(0), np.stack([(d ** p).sum(0) for p in (2, 3, 4)])))
    n, mean, M = combine_moments(parts)
    d = x - x.mean(0)
    assert n == 1000
    np.testing.assert_allclose(mean, x.mean(0), rtol=1e-14)
    for k, p in enumerate((2, 3, 4)):
        np.testing.assert_allclose(M[k], (d ** p).sum(0), rtol=1e-12)


CALLS = []


def _square_or_stop(task):
    """A sweep task that records its calls and raises at the task named by the flag (an interrupted run)."""
    value, stop_at = task[0], STOP[0]
    if value == stop_at:
        raise KeyboardInterrupt("interrupted")
    CALLS.append(value)
    return np.arange(value) ** 2


STOP = [None]


def test_checkpoint_resumes_only_the_remaining_tasks(tmp_path):
    tasks = [(v,) for v in range(8)]
    reference = [np.arange(v) ** 2 for v in range(8)]  # the serial result, computed directly
    STOP[0], CALLS[:] = 5, []
    with pytest.raises(KeyboardInterrupt):
        parallel.map_tasks(_square_or_stop, tasks, checkpoint=tmp_path / "ckpt")
    assert CALLS == [0, 1, 2, 3, 4]
    assert len(list((tmp_path / "ckpt").glob("task-*.pkl"))) == 5
    STOP[0], CALLS[:] = None, []
    out = parallel.map_tasks(_square_or_stop, tasks, checkpoint=tmp_path / "ckpt")
    assert CALLS == [5, 6, 7]  # only the remaining tasks ran
    for a, b in zip(out, reference):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(SpecError, match="checkpoint"):  # a different sweep in the same directory
        parallel.map_tasks(_square_or_stop, [(v + 1,) for v in range(8)], checkpoint=tmp_path / "ckpt")


def test_prior_checkpoint_equals_serial(tmp_path):
    net = sf.RNN(3, phi="erf", g=1.2)
    ref = prior(net, X, 16, 9, seed=4)
    a = prior(net, X, 16, 9, seed=4, chunk=2, checkpoint=tmp_path / "p")
    b = prior(net, X, 16, 9, seed=4, chunk=2, checkpoint=tmp_path / "p")  # all tasks loaded from the files
    for ens in (a, b):
        np.testing.assert_array_equal(ens.emp, ref.emp)
        np.testing.assert_array_equal(ens.aux, ref.aux)


def test_shuffled_task_order_gives_identical_results():
    """Tasks run in any order (as on workers) and reassembled give the serial numbers bit for bit."""
    order = np.random.default_rng(5).permutation
    net = sf.ResNet(3, phi="tanh")
    ref = prior(net, X, 16, 10, seed=2)
    root = np.random.SeedSequence(2)
    ranges = parallel.split(10, 4)
    perm = order(len(ranges))
    emp = np.empty_like(ref.emp)
    for i, out in zip(perm, parallel.map_tasks(_prior_task, [(net, ref.X, 16, root, *ranges[i], 3, 1) for i in perm])):
        emp[ranges[i][0]:ranges[i][1]] = out[0]
    np.testing.assert_array_equal(emp, ref.emp)

    km = kernel_moments(net, X, 16, 200, seed=(3, 1), chunk=40)
    tasks = moment_tasks(net, net.check_inputs(X), 16, 200, (3, 1), 40)
    perm = order(len(tasks))
    parts = dict(zip(perm, parallel.map_tasks(chunk_moments, [tasks[i] for i in perm])))
    again = moments_result(net, 16, [parts[i] for i in range(len(tasks))])
    for name in ("mean_emp", "var_emp", "mean_aux", "var_aux", "m4_aux"):
        np.testing.assert_array_equal(getattr(again, name), getattr(km, name))


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("distributed")
    client = parallel.resolve("local:2")  # two worker processes on 127.0.0.1, one thread each
    yield client
    parallel.close()


@pytest.mark.slow
def test_two_local_workers_bit_identical_to_serial(cluster):
    net = sf.RNN(3, phi="erf", g=1.3)
    a, b = prior(net, X, 24, 12, seed=1), prior(net, X, 24, 12, seed=1, scheduler="local:2")
    np.testing.assert_array_equal(a.emp, b.emp)
    np.testing.assert_array_equal(a.aux, b.aux)
    k1, k2 = (kernel_moments(net, X, 16, 300, seed=2, scheduler=s) for s in (None, cluster))
    np.testing.assert_array_equal(k1.var_aux, k2.var_aux)
    np.testing.assert_array_equal(k1.mean_emp, k2.mean_emp)
    mup = sf.RNN(3, phi="tanh", bias="none", scaling="mean_field", g=1.3)
    p1, p2 = (posterior(mup, X, np.ones((3, 3)), N=8, seed=3, samples=5, burn=10, chains=3, leapfrog=5,
                        eig_samples=2, scheduler=s) for s in (None, "local:2"))
    np.testing.assert_array_equal(p1.C, p2.C)
    np.testing.assert_array_equal(p1.chain, p2.chain)
    np.testing.assert_array_equal(p1.W_top, p2.W_top)
    assert p1.acceptance == p2.acceptance and p1.step == p2.step
    m1, m2 = (one_loop_measurements(net, X, [8, 16], 200, seed=5, scheduler=s) for s in (None, "local:2"))
    for key in m1:
        np.testing.assert_array_equal(m1[key], m2[key])


@pytest.mark.slow
def test_killed_worker_costs_a_retry_not_the_result(cluster):
    net = sf.RNN(6, phi="erf", g=1.3)
    ref = prior(net, X, 256, 160, seed=7, chunk=8)  # 20 tasks, each drawing 8 matrices of 256 x 256
    pids = cluster.run(os.getpid)
    killed = []

    def kill_one_while_running():
        deadline = time.time() + 60
        while time.time() < deadline and not any(cluster.processing().values()):
            time.sleep(0.005)
        busy = [addr for addr, keys in cluster.processing().items() if keys and addr in pids]
        if busy:  # a worker with a task in hand
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(busy[0])

    killer = threading.Thread(target=kill_one_while_running)
    killer.start()
    ens = prior(net, X, 256, 160, seed=7, chunk=8, scheduler=cluster)
    killer.join()
    assert killed, "no task was running when the worker was to be killed"
    np.testing.assert_array_equal(ens.emp, ref.emp)
    np.testing.assert_array_equal(ens.aux, ref.aux)


def test_reproduce_checks_the_scheduler(capsys):
    from symfield.cli import main
    assert main(["reproduce", "gp-kernels", "--quick", "--scheduler", "local:zero", "--out", "unused"]) == 2
    assert "scheduler" in capsys.readouterr().err


@pytest.mark.slow
def test_reproduction_identical_on_one_process_local_workers_and_an_external_scheduler(tmp_path, cluster, monkeypatch):
    """`symfield reproduce gp-kernels --quick` (prior ensembles of finite networks) writes the same numbers
    in-process, on 'local:2' and on an existing scheduler reached by its tcp:// address."""
    used = []
    run_tasks = parallel.run_tasks

    def spy(fn, tasks, scheduler=None, **kw):  # where the derivation's ensembles were sent
        used.append(getattr(getattr(scheduler, "scheduler", None), "address", scheduler))
        return run_tasks(fn, tasks, scheduler=scheduler, **kw)
    monkeypatch.setattr(parallel, "run_tasks", spy)
    pytest.importorskip("matplotlib")
    import json

    from dask.distributed import LocalCluster

    from symfield.cli import main
    external = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address=":0")
    results = {}
    try:
        for name, scheduler in (("serial", "serial"), ("local", "local:2"), ("external", external.scheduler_address)):
            out = tmp_path / name
            assert main(["reproduce", "gp-kernels", "--quick", "--no-progress", "--scheduler", scheduler,
                         "--out", str(out)]) == 0
            data = json.loads((out / "gp_kernels.json").read_text())
            data.pop("seconds")
            results[name] = data
            results[name + " ran on"] = set(used)
            used.clear()
    finally:
        parallel.set_default(None)
        client = parallel._clients.pop(external.scheduler_address, (None, None))[0]
        if client is not None:
            client.close()
        external.close()
    assert external.scheduler_address.startswith("tcp://127.0.0.1:")
    assert results.pop("serial ran on") == set()  # in-process: no task list handed out
    assert results.pop("local ran on") == {cluster.scheduler.address}
    assert results.pop("external ran on") == {external.scheduler_address}
    assert results["local"] == results["serial"]
    assert results["external"] == results["serial"]
