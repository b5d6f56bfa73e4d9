#!/usr/bin/env python3
"""Module graph of a crate's src/: files as nodes, `crate::…` paths as edges.
Prints the largest import cycle (strongly connected component), the modules naming AppState,
the handlers taking the whole state, and the largest files. Comments are not read: a path named
in a doc comment is no import."""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else 'gateway/server/src'
mods = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs'): continue
        p = os.path.join(d, f); rel = os.path.relpath(p, root)[:-3].split(os.sep)
        if rel[-1] in ('mod', 'lib', 'main'): rel = rel[:-1]
        mods['::'.join(rel)] = p
def strip_comments(src):
    """The source without its comments; string and char literals kept as they are."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith('//', i):
            j = src.find('\n', i)
            i = n if j < 0 else j
        elif src.startswith('/*', i):
            depth, i = 1, i + 2
            while i < n and depth:
                if src.startswith('/*', i): depth, i = depth + 1, i + 2
                elif src.startswith('*/', i): depth, i = depth - 1, i + 2
                else: i += 1
        elif (m := re.match(r'b?r(#*)"', src[i:])) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == '_')):
            end = src.find('"' + m.group(1), i + m.end())
            end = n if end < 0 else end + 1 + len(m.group(1))
            out.append(src[i:end]); i = end
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == '\\' else 1
            out.append(src[i:j + 1]); i = j + 1
        elif (m := re.match(r"'(\\.|[^\\'])'", src[i:])):
            out.append(m.group(0)); i += m.end()
        else:
            out.append(c); i += 1
    return ''.join(out)
def strip_tests(src):
    i = src.find('#[cfg(test)]\nmod tests')
    return strip_comments(src if i < 0 else src[:i])
edges = {m: set() for m in mods}
for m, p in mods.items():
    src = strip_tests(open(p).read())
    paths = re.findall(r'crate::((?:\w+::)*\w+)', src)
    # `use crate::{a, b::c}` groups
    for g in re.findall(r'use crate::\{([^;]*)\};', src, re.S):
        for part in re.split(r'[,\s]+', g):
            part = part.strip('{} ')
            if part: paths.append(part.split('::{')[0])
    if m.count('::') == 0 and m:
        pass
    for path in paths:
        segs = path.split('::')
        for k in range(len(segs), 0, -1):
            cand = '::'.join(segs[:k])
            if cand in mods:
                if cand != m and not m.startswith(cand + '::') or cand == '':
                    edges[m].add(cand)
                break
    # `super::x` within a folder
    parent = '::'.join(m.split('::')[:-1]) if not p.endswith('mod.rs') else m
    for s in re.findall(r'super::(\w+)', src):
        base = '::'.join(m.split('::')[:-1]) if not p.endswith('mod.rs') else '::'.join(m.split('::')[:-1])
        cand = (base + '::' + s) if base else s
        if cand in mods and cand != m: edges[m].add(cand)
edges.pop('', None)
for e in edges.values(): e.discard('')
# Tarjan
index = {}; low = {}; stack = []; on = set(); sccs = []; n = [0]
sys.setrecursionlimit(10000)
def sc(v):
    index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in edges: continue
        if w not in index: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in edges:
    if v not in index: sc(v)
big = max(sccs, key=len)
print(f"modules: {len(edges)}")
print(f"largest import cycle: {len(big)} modules: {' '.join(sorted(big))}")
state = [m for m, p in mods.items() if m and re.search(r'\bAppState\b', strip_tests(open(p).read()))]
print(f"modules naming AppState: {len(state)}")
whole = 0
for m, p in mods.items():
    whole += len(re.findall(r'(?:web::Data<AppState>|state: &AppState|state: &State\b|\bState\)|: State,)', strip_tests(open(p).read())))
print(f"functions taking the whole state (approx.): {whole}")
sizes = sorted(((sum(1 for _ in open(p)), p) for p in mods.values()), reverse=True)[:5]
print("largest files: " + ', '.join(f"{os.path.relpath(p, root)} {n}" for n, p in sizes))
