"""An example command executor that reports its progress (see the README's "Progress").

pilotsite starts it with the task as JSON on standard input. While it works it prints one
JSON line per step, `{"progress": "…"}`; its last line is the result. Try it with
`PILOT_EXECUTOR_COMMAND="python /path/to/examples/progress_executor.py --steps 3 --pause 2"`.

`--pid-file PATH` writes its process group there first (the tests use it to see that a stop
ends the whole group); `--child` starts a child process that would outlive a careless kill.
"""

import argparse
import json
import os
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds per step")
    parser.add_argument("--pid-file", default="")
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    task = json.load(sys.stdin)
    if args.child:
        subprocess.Popen(["sleep", "300"])
    if args.pid_file:
        with open(args.pid_file, "w") as out:
            out.write(f"{os.getpgrp()}\n")
    for step in range(1, args.steps + 1):
        print(json.dumps({"progress": f"Step {step} of {args.steps}"}), flush=True)
        time.sleep(args.pause)
    print(json.dumps({"summary": f"Finished {args.steps} steps on {task['title']}"}))


if __name__ == "__main__":
    main()
