"""Reads a seq1f1b-train --save checkpoint as any safetensors reader would,
without the runtime's code: the 8-byte header length, the JSON header, then
every tensor's bytes. Checks that every parameter of the runtime graph is
there with its shape, as F32, with its two AdamW moments, that the byte
ranges tile the data exactly, and prints the metadata.

usage: check_checkpoint.py CHECKPOINT GRAPH_JSON
"""
import json
import struct
import sys


def main():
    blob = open(sys.argv[1], "rb").read()
    graph = json.load(open(sys.argv[2]))
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    meta = header.pop("__metadata__")
    ranges = []
    for p in graph["params"]:
        for key in (p["name"], "optimizer.m." + p["name"],
                    "optimizer.v." + p["name"]):
            t = header.pop(key)
            assert t["dtype"] == "F32", (key, t)
            assert t["shape"] == p["shape"], (key, t["shape"], p["shape"])
            count = 1
            for d in t["shape"]:
                count *= d
            begin, end = t["data_offsets"]
            assert end - begin == 4 * count, (key, t)
            ranges.append((begin, end))
            values = struct.unpack(f"<{count}f", data[begin:end])
            assert all(v == v for v in values), f"{key} has a NaN"
    assert not header, f"tensors the graph does not have: {list(header)}"
    ranges.sort()
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data), "data not tiled"
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:])), "gaps"
    print(f"{len(graph['params'])} parameters and their moments;",
          " ".join(f"{k}={meta[k]}" for k in sorted(meta) if k != "graph"))


if __name__ == "__main__":
    main()
