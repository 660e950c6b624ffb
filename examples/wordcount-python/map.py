"""map.py - the map guest of examples/wordcount-python, ZeroCloud's classic
Python wordcount: counts the words of its part of the input (/dev/stdin) and
sends each word's count to the reducer that owns it, exactly as
examples/wordcount/map.c does, so reduce.py and reduce.c accept its output.

A word is what `tr -s ' ' '\\n'` makes a line of: a maximal run of bytes other
than space and newline (an input that starts with one also has an empty word).
Output: lines b"COUNT WORD\\n" on every channel /dev/out/* (one per reducer,
sorted by name; a word goes to the reducer its BLAKE2b hash picks, the same in
every map), or on /dev/stdout when there is none, so
`zvsh --zvm-image python.tar python map.py < text | zvsh ... python reduce.py`
works on one machine.
"""
import collections
import hashlib
import os
import re
import sys

words = re.split(rb"[ \n]+", sys.stdin.buffer.read())
if words[-1] == b"":
    words.pop()  # the input's last separator ends the last word; it starts none
counts = collections.Counter(words)

outs = [f"/dev/out/{name}" for name in sorted(os.listdir("/dev/out"))] if os.path.isdir("/dev/out") else []
streams = [open(path, "wb") for path in outs] or [sys.stdout.buffer]
for word, count in counts.items():
    owner = int.from_bytes(hashlib.blake2b(word, digest_size=8).digest(), "little") % len(streams)
    streams[owner].write(b"%d %s\n" % (count, word))
for stream in streams:
    stream.flush()
