#!/usr/bin/env python3
"""Checks the direction of `use` between a crate's modules.

    python3 scripts/check_modules.py CRATE_SRC [--leaf MOD ...] [--sys MOD]
        [--backend MOD ...] [--graph]

Reads every `.rs` file under CRATE_SRC (test-only code left out: files
named `*tests.rs` and what follows a `#[cfg(test)]` module), resolves each
`crate::`, `super::` and `self::` path to the module that defines what it
names, following the names other modules' `use` lines bring in (the crate
root's re-exports, a parent's `pub(crate) use self::waker::Waker`;
`#[cfg(doc)]` imports, which only rustdoc's links use, left out), and
fails on:

* a circle: module A uses B and B, directly or through others, uses A.
  A module using its own ancestors (a backend using `sys/mod.rs`'s shared
  helpers) is how Rust nests modules, not a circle: those edges are left
  out; every other edge counts;
* `--leaf MOD`: a vocabulary module that uses anything of the crate but
  other vocabulary modules;
* `--sys MOD`: a module under MOD that uses something outside MOD other
  than the `--leaf` modules;
* `--backend MOD`: a backend that uses another backend's items (what two
  of them share lives in their parent module).

A MOD is written `sys::unix::epoll` or `sys/unix/epoll`. `--graph` prints
the edges. Written by hand because no crate or tool on the registries
checks this without building the crate (cargo-modules needs
rust-analyzer's toolchain and prints, but does not judge, cycles).
"""

import re
import sys
from pathlib import Path


def module_of(src, path):
    rel = path.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts in (["lib"], ["main"]):
        return ()
    if parts[-1] == "mod":
        parts = parts[:-1]
    return tuple(parts)


def strip(text):
    """The code without comments, string literals and test modules."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r'r#+".*?"#+', '""', text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text, flags=re.S)
    # Imports for rustdoc's links only are not dependencies of the code.
    text = re.sub(r"#\[cfg\(doc\)\]\s*(pub(\([^)]*\))?\s+)?use\s[^;]*;", " ", text)
    m = re.search(r"#\[cfg\((all\()?test[^\]]*\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text)
    if m:
        text = text[: m.start()]
    return text


def use_paths(text):
    """Every path that starts with crate/super/self, `use` groups expanded."""
    out = []
    for m in re.finditer(r"\buse\s+((?:crate|super|self)\b[^;]*);", text, flags=re.S):
        out.extend(expand(squeeze(m.group(1))))
    # Paths written inline (`crate::ops::OpId` in a signature).
    body = re.sub(r"\buse\s+(?:crate|super|self)\b[^;]*;", " ", text, flags=re.S)
    for m in re.finditer(r"\b((?:crate|super|self)(?:::(?:super|[A-Za-z_]\w*))+)", body):
        out.append(m.group(1).split("::"))
    return out


def squeeze(tree):
    """A `use` tree without whitespace, `x as y` written `x@y`."""
    return re.sub(r"\s+", "", re.sub(r"\s+as\s+", "@", tree))


def expand(tree, keep_alias=False):
    """`crate::{a::B,c::{D,E}}` -> [[crate,a,B],[crate,c,D],[crate,c,E]]
    (a squeezed tree). With `keep_alias`, `a::B@C` gives [a, B, "@C"]."""
    i = tree.find("{")
    if i < 0:
        path, _, alias = tree.partition("@")
        path = [p for p in path.split("::") if p]
        return [path + ["@" + alias]] if alias and keep_alias else [path]
    prefix = tree[:i].rstrip(":").split("::")
    inner = tree[i + 1: tree.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    if cur:
        parts.append(cur)
    out = []
    for p in parts:
        if p in ("self", ""):
            out.append(prefix)
        else:
            out.extend(prefix + q for q in expand(p, keep_alias))
    return out


def modpath(arg):
    """A module named `sys::unix::epoll` or `sys/unix/epoll`."""
    return tuple(p for p in re.split(r"::|/", arg) if p)


def bindings(text):
    """What a module's `use crate::/self::/super::` lines bind: name -> path."""
    out, twice = {}, set()
    for m in re.finditer(r"\buse\s+((?:crate|super|self)\b[^;]*);", text, flags=re.S):
        for p in expand(squeeze(m.group(1)), keep_alias=True):
            alias = p.pop()[1:] if p and p[-1].startswith("@") else None
            if len(p) < 2 or p[-1] == "*":
                continue
            name = alias or p[-1]
            if name in out and out[name] != p:
                twice.add(name)
            out[name] = p
    return {k: v for k, v in out.items() if k not in twice}


def main(argv):
    args = argv[1:]
    if not args:
        print(__doc__)
        return 2
    src = Path(args[0])
    leaves, sysmods, backends, graph = [], [], [], "--graph" in args
    i = 1
    while i < len(args):
        if args[i] == "--leaf":
            leaves.append(modpath(args[i + 1]))
            i += 2
        elif args[i] == "--backend":
            backends.append(modpath(args[i + 1]))
            i += 2
        elif args[i] == "--sys":
            sysmods.append(modpath(args[i + 1]))
            i += 2
        else:
            i += 1

    files = {}
    for path in sorted(src.rglob("*.rs")):
        if path.stem.endswith("tests"):
            continue
        files[module_of(src, path)] = strip(path.read_text())
    modules = set(files)

    # The names each module's `use` lines bring in (a `pub use` re-export,
    # or a private one its descendants see too): name -> path as written.
    # A name bound twice (`use self::unix as imp` and `use self::windows as
    # imp` under opposite cfgs) is not followed.
    names = {mod: bindings(text) for mod, text in files.items()}

    def resolve(mod, path, depth=0):
        """The module that defines what `path`, written in `mod`, names;
        and whether the whole path is that module."""
        if path[0] == "crate":
            base, rest = (), path[1:]
        else:
            base, rest = mod, path
            while rest and rest[0] in ("self", "super"):
                if rest[0] == "super":
                    base = base[:-1]
                rest = rest[1:]
        target = base
        for i, seg in enumerate(rest):
            if target + (seg,) in modules:
                target = target + (seg,)
                continue
            via = names.get(target, {}).get(seg)
            if via is None or depth > 16:
                return target, False
            target, whole = resolve(target, via, depth + 1)
            if not whole:
                return target, False
        return target, True

    edges = {}
    for mod, text in files.items():
        for path in use_paths(text):
            t, _ = resolve(mod, path)
            if t == mod or t == ():
                continue
            edges.setdefault(mod, set()).add(t)

    def name(m):
        return "::".join(m) or "crate"

    def under(m, root):
        return m[: len(root)] == root

    problems = []
    if graph:
        for a in sorted(edges):
            print(f"{name(a)} -> {', '.join(sorted(name(b) for b in edges[a]))}")

    for leaf in leaves:
        for t in sorted(edges.get(leaf, ())):
            if t in leaves:
                continue
            problems.append(f"{name(leaf)} is a vocabulary module but uses {name(t)}")
    for root in sysmods:
        for a in sorted(edges):
            if not under(a, root):
                continue
            for t in sorted(edges[a]):
                if not under(t, root) and t not in leaves:
                    problems.append(f"{name(a)} reaches above {name(root)} into {name(t)}")

    for a in backends:
        for b in backends:
            if a != b and any(under(t, b) for t in edges.get(a, ())):
                problems.append(f"backend {name(a)} uses backend {name(b)}")

    # Circles: strongly connected components, child -> ancestor edges left out.
    g = {a: {b for b in bs if not under(a, b)} for a, bs in edges.items()}
    index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    for comp in sccs:
        members = set(comp)
        detail = "; ".join(
            f"{name(a)} -> {name(b)}" for a in sorted(comp) for b in sorted(g.get(a, ())) if b in members
        )
        problems.append(f"circle: {', '.join(sorted(name(c) for c in comp))} ({detail})")

    for p in problems:
        print(f"{src}: {p}")
    print(f"modules {src}: {len(modules)} modules, {sum(len(v) for v in edges.values())} edges, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
