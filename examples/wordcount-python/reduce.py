"""reduce.py - the reduce guest of examples/wordcount-python: adds up the
counts the maps send (lines b"COUNT WORD\\n" on every channel /dev/in/*, read
one after another in name order, or /dev/stdin when there is none) and prints
each word with its total as `LC_ALL=C sort | uniq -c` does: b"%7d %s\\n", the
words in byte order. Its output equals examples/wordcount/reduce.c's.
"""
import collections
import os
import sys

ins = [f"/dev/in/{name}" for name in sorted(os.listdir("/dev/in"))] if os.path.isdir("/dev/in") else []
totals = collections.Counter()
for stream in [open(path, "rb") for path in ins] or [sys.stdin.buffer]:
    for line in stream:
        count, word = line.rstrip(b"\n").split(b" ", 1)
        totals[word] += int(count)
out = sys.stdout.buffer
for word in sorted(totals):
    out.write(b"%7d %s\n" % (totals[word], word))
out.flush()
