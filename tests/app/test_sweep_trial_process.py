"""A trial process: its output in a log file, one SIGINT (Lightning's clean shutdown) when the
sweep is stopped, values written as the config parser reads them."""

import sys
import threading
import time

from litlab.app.sweeps.trial_process import format_value, log_tail, run_process

# Stands in for a trial: says it started, then waits; a SIGINT ends it with a message.
WAITING_TRIAL = """
import signal, sys, time
def stop(signum, frame):
    print("stopping cleanly", flush=True)
    sys.exit(3)
signal.signal(signal.SIGINT, stop)
print("training", flush=True)
time.sleep(60)
"""


def test_a_stopped_trial_gets_one_sigint_and_its_output_is_kept(tmp_path):
    stop = threading.Event()
    log_path = tmp_path / "run" / "output.log"
    threading.Timer(1.0, stop.set).start()
    started = time.monotonic()
    code, interrupted = run_process([sys.executable, "-c", WAITING_TRIAL], {}, log_path, stop)
    assert interrupted
    assert code == 3  # its own SIGINT handler ran: a clean stop, not a kill
    assert time.monotonic() - started < 20
    assert log_path.read_text().splitlines() == ["training", "stopping cleanly"]


def test_a_trial_that_ends_by_itself(tmp_path):
    code, interrupted = run_process(
        [sys.executable, "-c", "import sys; print('done'); sys.exit(0)"],
        {},
        tmp_path / "output.log",
        threading.Event(),
    )
    assert (code, interrupted) == (0, False)
    assert (tmp_path / "output.log").read_text() == "done\n"


def test_the_trial_runs_in_its_own_process_group(tmp_path):
    """A Ctrl-C in the terminal reaches the sweep alone, which then stops the trial once."""
    code, _ = run_process(
        [sys.executable, "-c", "import os, sys; sys.exit(os.getpgrp() == os.getpid())"],
        {},
        tmp_path / "output.log",
        threading.Event(),
    )
    assert code == 1


def test_log_tail_keeps_the_last_state_of_progress_bars(tmp_path):
    log_path = tmp_path / "output.log"
    log_path.write_text("a\nEpoch 0: 10%\rEpoch 0: 100%\nTraceback\nValueError: bad\n")
    assert log_tail(log_path, lines=3) == "Epoch 0: 100%\nTraceback\nValueError: bad"


def test_values_are_written_as_yaml_reads_them():
    assert format_value(0.001) == "0.001"
    assert format_value(1e-05) == "1e-05"
    assert format_value(True) == "true"
    assert format_value(None) == "null"
    assert format_value([256, 256]) == "[256, 256]"
    assert format_value("torch.optim.SGD") == "torch.optim.SGD"
