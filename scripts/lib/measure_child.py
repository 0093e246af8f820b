"""Runs a command, then writes its wall time and peak RSS (the child's getrusage) as JSON.

    python3 measure_child.py OUT.json COMMAND [ARG...]

Used by scripts/scaling-curve for the import's time and memory, measured on its own
process as an operator runs it. Exits with the command's status.
"""
import json
import resource
import subprocess
import sys
import time

out, command = sys.argv[1], sys.argv[2:]
started = time.monotonic()
status = subprocess.call(command)
seconds = time.monotonic() - started
# ru_maxrss is in kB on Linux: the largest child waited for, here the only one.
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(out, "w") as f:
    json.dump({"command": command, "status": status, "seconds": seconds, "peak_rss_kb": peak_kb}, f)
if status != 0:
    sys.exit(f"measure_child: {command[0]} exited with status {status}")
