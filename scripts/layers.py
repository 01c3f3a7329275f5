#!/usr/bin/env python3
"""Checks that src/'s folders form layers: no include or call between two
folders goes both ways, directly or round a longer cycle.

Include edges come from the sources (#include "folder/file.h"); call edges
from the object files (`nm`: a symbol one folder's object needs and another
folder's object defines). Prints the folder graph and exits 1 on a cycle.

usage: scripts/layers.py [--objs DIR]   (DIR: build/obj, the release objects)
"""
import argparse
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[a-z_0-9]+\.h"', re.M)


def include_edges(src):
    edges = {}
    for folder in sorted(os.listdir(src)):
        d = os.path.join(src, folder)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if not name.endswith(('.c', '.h')):
                continue
            text = open(os.path.join(d, name), encoding='utf-8').read()
            for dep in INCLUDE.findall(text):
                if dep != folder:
                    edges.setdefault((folder, dep), []).append(f'{folder}/{name}')
    return edges


def call_edges(objs):
    """(caller folder, callee folder) -> example symbols, from nm output."""
    defined, needed = {}, []
    root = os.path.join(objs, 'src')
    if not os.path.isdir(root):
        return None
    for folder in sorted(os.listdir(root)):
        d = os.path.join(root, folder)
        for name in sorted(os.listdir(d)):
            if not name.endswith('.o'):
                continue
            out = subprocess.run(['nm', os.path.join(d, name)], capture_output=True,
                                 text=True, check=True).stdout
            for line in out.splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[1] in 'TDBR':
                    defined[parts[2]] = folder
                elif len(parts) == 2 and parts[0] == 'U':
                    needed.append((folder, parts[1]))
    edges = {}
    for folder, sym in needed:
        owner = defined.get(sym)
        if owner and owner != folder:
            edges.setdefault((folder, owner), []).append(sym)
    return edges


def find_cycle(nodes, graph):
    state = {}
    stack = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(nodes):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--src', default='src')
    ap.add_argument('--objs', default='build/obj')
    ap.add_argument('--quiet', action='store_true')
    a = ap.parse_args()
    edges = {}
    for (x, y), why in include_edges(a.src).items():
        edges.setdefault((x, y), []).extend('include ' + w for w in why[:2])
    calls = call_edges(a.objs)
    for (x, y), why in (calls or {}).items():
        edges.setdefault((x, y), []).extend('calls ' + w for w in why[:2])
    graph, nodes = {}, set()
    for x, y in edges:
        graph.setdefault(x, set()).add(y)
        nodes.update((x, y))
    if not a.quiet:
        for x in sorted(graph):
            print(f'{x:8} -> {" ".join(sorted(graph[x]))}')
        if calls is None:
            print(f'(no objects under {a.objs}: include edges only)')
    cycle = find_cycle(nodes, graph)
    if cycle:
        print('layers: cycle ' + ' -> '.join(cycle), file=sys.stderr)
        for x, y in zip(cycle, cycle[1:]):
            print(f'  {x} -> {y}: {", ".join(edges[(x, y)][:4])}', file=sys.stderr)
        return 1
    print('layers: no cycle between src/ folders')
    return 0


if __name__ == '__main__':
    sys.exit(main())
