"""Start a command from a tiny process; report its wall time, CPU time and own peak RSS.

    python -S launch.py RESULT.json CMD [ARG]...

A child's ru_maxrss counts the memory it shared with its parent before exec, so a
contender spawned straight from the harness (which hosts the simulator) would inherit the
harness's size; spawned from this few-MB process it reports only its own.
"""

import json
import os
import sys
import time


def main() -> int:
    result, cmd = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.posix_spawnp(cmd[0], cmd, os.environ)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    with open(result, "w") as f:
        json.dump({"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime,
                   "maxrss_kib": usage.ru_maxrss, "exit": code}, f)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
