#!/usr/bin/env python3
"""Summarise ptfrag analyze JSON reports: model, exit, errors by rule, inconclusive by reason,
explained/open, inferred misses by probe vs the profile, predicted allocations."""
import json, sys, collections
for path in sys.argv[1:]:
    try:
        d = json.load(open(path))
    except Exception as e:
        print(path, "no json:", e); continue
    r = d['inputs'][0] if 'inputs' in d else d
    rules = collections.Counter(f['rule'] for f in r.get('findings', []))
    inc = collections.Counter((i.get('reason'), 'expl' if i.get('explainedBy') else 'OPEN', i.get('wouldBeRule')) for i in r.get('inconclusive', []))
    st = r.get('stats') or {}
    print(f"{path}: model={r.get('model')} verdict={r.get('verdict')} exit={r.get('exitCode')} err={str(r.get('error',''))[:300]}")
    print("   findings:", dict(rules), " countsByRule:", r.get('countsByRule'))
    print("   inconclusive:", dict(inc))
    print("   probeMisses:", r.get('probeMisses'))
    print("   stats:", {k: st.get(k) for k in ('allocations','allocsPredicted','predicted','allocsChecked','checked') if k in st}, [k for k in st.keys()][:40])
