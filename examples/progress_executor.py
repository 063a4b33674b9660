"""An example command executor that reports its progress and asks for input (see the
README's "Runs, progress and stopping" and "Asking for input").

pilotsite starts it with the task as JSON on standard input. While it works it prints one
JSON line per step, `{"progress": "…"}`; its last line is the result. Try it with
`PILOT_EXECUTOR_COMMAND="python /path/to/examples/progress_executor.py --steps 3 --pause 2"`.

`--ask QUESTION` (repeatable) asks each question in turn: while the task's `conversation`
holds fewer replies than questions given, it ends with `{"needs_input": "<the next one>"}`
and pilotsite posts it on the task; a reply there runs it again with the conversation so far.

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
    parser.add_argument("--ask", action="append", default=[], help="a question to ask")
    args = parser.parse_args()
    task = json.load(sys.stdin)
    replies = [turn for turn in task.get("conversation", []) if turn["kind"] == "reply"]
    if args.child:
        subprocess.Popen(["sleep", "300"])
    if args.pid_file:
        with open(args.pid_file, "w") as out:
            out.write(f"{os.getpgrp()}\n")
    for step in range(1, args.steps + 1):
        print(json.dumps({"progress": f"Step {step} of {args.steps}"}), flush=True)
        time.sleep(args.pause)
    if len(replies) < len(args.ask):
        print(json.dumps({"needs_input": args.ask[len(replies)]}))
        return
    answers = "".join(f"; {turn['author']} said {turn['text']!r}" for turn in replies)
    print(json.dumps({"summary": f"Finished {args.steps} steps on {task['title']}{answers}"}))


if __name__ == "__main__":
    main()
