"""Runs CPython's regression tests (python -m test ARGS) inside the jail.

regrtest assumes any Linux can start threads: at exit it arms a watchdog
thread, which a jailed guest cannot start (no clone), so the run would end
in RuntimeError whatever the tests did. Telling it threads are unavailable
leaves the results and the exit status to the tests.
"""
from test.support import threading_helper

threading_helper.can_start_thread = False

from test.libregrtest import main  # noqa: E402

main()
