#!/usr/bin/env python3
"""The engine's shape, read from its #include lines.

    tools/layers.py            check the rules, print what breaks them
    tools/layers.py --graph    print the include graph (Mermaid) for docs
    tools/layers.py --write    rewrite the graph in docs/architecture.md

Rules: every source sits in one layer folder (core, proxy, mod, check,
report, run, lowest first); a file includes only headers of its own layer or of a
layer below; no include cycle between units (a unit is a .c and its .h);
no source file over MAX_LINES lines. Exit 1 when a rule is broken.
"""
import os
import re
import sys

LAYERS = ["core", "proxy", "mod", "check", "report", "run"]
MAX_LINES = 700
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
ENGINE = os.path.join(ROOT, "engine")
DOC = os.path.join(ROOT, "docs", "architecture.md")
BEGIN, END = "<!-- include graph: tools/layers.py --write -->", "<!-- end of include graph -->"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources():
    for dirpath, _, names in os.walk(ENGINE):
        for name in sorted(names):
            if name.endswith((".c", ".h", ".lua")):
                yield os.path.relpath(os.path.join(dirpath, name), ENGINE)


def layer_of(rel):
    return rel.split("/", 1)[0] if "/" in rel else None


def unit_of(rel):
    """core/sched.c and core/sched.h are one unit, core/sched; the files of
    a folder inside a layer (mod/http/*) are one unit, the folder."""
    parts = rel.split("/")
    if len(parts) > 2:
        return "/".join(parts[:2])
    return os.path.splitext(rel)[0]


def read_graph():
    edges, problems, sizes = {}, [], {}
    for rel in sources():
        text = open(os.path.join(ENGINE, rel), encoding="utf-8").read()
        sizes[rel] = text.count("\n")
        layer = layer_of(rel)
        if layer not in LAYERS:
            problems.append(f"engine/{rel}: not in a layer folder ({', '.join(LAYERS)})")
            continue
        if rel.endswith(".lua"):
            continue
        for inc in INCLUDE.findall(text):
            target_layer = layer_of(inc)
            if target_layer is None:
                # a header beside the file (mod/http/*.h)
                here = os.path.dirname(rel)
                inc = os.path.normpath(os.path.join(here, inc))
                target_layer = layer_of(inc)
            if not os.path.exists(os.path.join(ENGINE, inc)):
                problems.append(f"engine/{rel}: includes {inc}, which is not in engine/")
                continue
            if LAYERS.index(target_layer) > LAYERS.index(layer):
                problems.append(f"engine/{rel}: includes {inc}, of the {target_layer} layer above {layer}")
            a, b = unit_of(rel), unit_of(inc)
            if a != b:
                edges.setdefault(a, set()).add(b)
    return edges, problems, sizes


def find_cycle(edges):
    state, stack = {}, []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if not state.get(nxt):
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(edges):
        if not state.get(node):
            found = visit(node)
            if found:
                return found
    return None


def mermaid(edges):
    units = sorted(set(edges) | {b for bs in edges.values() for b in bs})
    lines = ["```mermaid", "flowchart BT"]
    for layer in LAYERS:
        members = [u for u in units if layer_of(u) == layer]
        lines.append(f"  subgraph {layer}")
        lines += [f"    {u.replace('/', '_')}[{u.split('/', 1)[1]}]" for u in members]
        lines.append("  end")
    for a in sorted(edges):
        for b in sorted(edges[a]):
            # util, the helper layer and the sandbox are everywhere: drawn,
            # they hide the shape; the list below the graph has them
            if b in ("core/util", "core/errors", "core/sandbox", "core/events"):
                continue
            lines.append(f"  {a.replace('/', '_')} --> {b.replace('/', '_')}")
    lines.append("```")
    lines.append("")
    lines.append("Every include, unit by unit (a unit is a `.c` with its `.h`):")
    lines.append("")
    for a in sorted(edges):
        lines.append(f"- `{a}` → " + ", ".join(f"`{b}`" for b in sorted(edges[a])))
    return "\n".join(lines)


def main(argv):
    edges, problems, sizes = read_graph()
    if "--graph" in argv:
        print(mermaid(edges))
        return 0
    if "--write" in argv:
        doc = open(DOC, encoding="utf-8").read()
        a, b = doc.index(BEGIN) + len(BEGIN), doc.index(END)
        open(DOC, "w", encoding="utf-8").write(doc[:a] + "\n" + mermaid(edges) + "\n" + doc[b:])
        return 0
    cycle = find_cycle(edges)
    if cycle:
        problems.append("include cycle: " + " -> ".join(cycle))
    for rel, n in sorted(sizes.items()):
        if n > MAX_LINES:
            problems.append(f"engine/{rel}: {n} lines, over {MAX_LINES}: split it by concern")
    doc = open(DOC, encoding="utf-8").read() if os.path.exists(DOC) else ""
    if BEGIN in doc and doc[doc.index(BEGIN) + len(BEGIN):doc.index(END)].strip() != mermaid(edges).strip():
        problems.append("docs/architecture.md: the include graph is out of date (tools/layers.py --write)")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
