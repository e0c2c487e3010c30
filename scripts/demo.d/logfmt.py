#!/usr/bin/env python3
"""Prints hawser's JSON log lines (one object per line) as short readable lines.

    logfmt.py FILE [PATTERN] [--last N]

Only lines whose message contains PATTERN (all lines without one); the last N of them
(default 3). Output: `HH:MM:SS LEVEL message key=value ...`. Lines that are not JSON
are printed as they are, so nothing the agent said is hidden.
"""

import json
import sys


def short(value):
    text = str(value)
    # Revisions are 40-hex commit ids: 12 characters are enough to recognise them.
    if len(text) == 40 and all(c in "0123456789abcdef" for c in text):
        return text[:12]
    return text


def render(line):
    try:
        record = json.loads(line)
    except ValueError:
        return line.rstrip("\n")
    if not isinstance(record, dict):
        return line.rstrip("\n")
    # hawser logs flattened events: the message and the event's fields at the top
    # level, the current span (with the revision) under "span".
    meta = {"timestamp", "level", "target", "message", "span", "spans", "threadName", "threadId"}
    fields = {k: v for k, v in record.items() if k not in meta}
    span = record.get("span")
    if isinstance(span, dict):
        for k, v in span.items():
            if k != "name":
                fields.setdefault(k, v)
    message = record.get("message", "")
    time = str(record.get("timestamp", ""))
    if "T" in time:
        time = time.split("T", 1)[1][:8]
    level = str(record.get("level", "")).upper()
    extra = " ".join(f"{k}={short(v)}" for k, v in fields.items())
    return f"{time} {level:<5} {message}" + (f"  {extra}" if extra else "")


def main(argv):
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path, rest = argv[0], argv[1:]
    last = 3
    if "--last" in rest:
        i = rest.index("--last")
        last = int(rest[i + 1])
        del rest[i : i + 2]
    pattern = rest[0] if rest else ""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [l for l in f if pattern in l]
    for line in lines[-last:] if last > 0 else lines:
        print(render(line))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
