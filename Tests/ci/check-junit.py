#!/usr/bin/env python3
"""Second opinion on the JUnit files ptfrag's tests produce: each must validate against the
JUnit XSD with xmllint and be read by junitparser with the expected suite/case counts.

The Swift tests (Tests/EndToEndTests) keep every JUnit file they produce, with its expected
counts beside it, in $PTFRAG_JUNIT_SAMPLES or .build/junit-samples:
    NAME.xml  NAME.expected.json  ({"suites": 1, "tests": 21, "failures": 3, "errors": 0, "skipped": 0})

Usage:
    Tests/ci/check-junit.py [--xsd XSD] [--no-xmllint] [DIR | FILE.xml ...]
    Tests/ci/check-junit.py --xsd XSD report.xml --expect suites=1,tests=21,failures=0,errors=0,skipped=0

With a DIR, every *.xml in it is checked against its NAME.expected.json (a file without one is
an error), and an empty DIR fails. Exit 0 when every file passes, 1 otherwise, 2 on bad usage.
Needs: pip install junitparser; apt-get install libxml2-utils (xmllint).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

try:
    from junitparser import JUnitXml, TestSuite
    from junitparser import Error as JError
    from junitparser import Failure as JFailure
    from junitparser import Skipped as JSkipped
except ImportError:  # pragma: no cover - told plainly
    sys.exit("check-junit: junitparser is not installed (pip install junitparser)")

KEYS = ("suites", "tests", "failures", "errors", "skipped")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def default_xsd():
    for p in (os.path.join(ROOT, "Fixtures/junit/junit-10.xsd"),
              os.path.join(os.path.dirname(ROOT), "shared/junit/junit-10.xsd")):
        if os.path.exists(p):
            return p
    return None


def parse_expect(text):
    out = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        if k not in KEYS or not v.isdigit():
            raise argparse.ArgumentTypeError(f"bad --expect item {part!r} (keys: {', '.join(KEYS)})")
        out[k] = int(v)
    missing = [k for k in KEYS if k not in out]
    if missing:
        raise argparse.ArgumentTypeError(f"--expect lacks {', '.join(missing)}")
    return out


def counts(path):
    """Reads `path` with junitparser; returns the counts and the problems it saw."""
    problems = []
    xml = JUnitXml.fromfile(path)
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    got = dict.fromkeys(KEYS, 0)
    got["suites"] = len(suites)
    for s in suites:
        cases = list(s)
        n = {"tests": len(cases), "failures": 0, "errors": 0, "skipped": 0}
        for c in cases:
            results = c.result
            if any(isinstance(r, JFailure) for r in results):
                n["failures"] += 1
            elif any(isinstance(r, JError) for r in results):
                n["errors"] += 1
            elif any(isinstance(r, JSkipped) for r in results):
                n["skipped"] += 1
            if c.name is None or c.classname is None:
                problems.append(f"suite {s.name!r}: a testcase without name or classname")
        # What the suite declares must be what it holds.
        for k in ("tests", "failures", "errors", "skipped"):
            declared = s._elem.get(k)
            if declared is None or int(declared) != n[k]:
                problems.append(f"suite {s.name!r}: {k}={declared} declared, {n[k]} held")
            got[k] += n[k]
        if s.time is None or s.timestamp is None or s.hostname is None:
            problems.append(f"suite {s.name!r}: time, timestamp or hostname missing")
    if not isinstance(xml, TestSuite):
        for k in ("tests", "failures", "errors"):
            declared = xml._elem.get(k)
            if declared is None or int(declared) != got[k]:
                problems.append(f"testsuites: {k}={declared} declared, {got[k]} held")
    return got, problems


def xmllint(path, xsd):
    r = subprocess.run(["xmllint", "--noout", "--schema", xsd, path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    return [] if r.returncode == 0 else [f"xmllint: {line}" for line in r.stdout.splitlines()]


def check(path, expected, xsd, use_xmllint):
    problems = xmllint(path, xsd) if use_xmllint else []
    try:
        got, seen = counts(path)
        problems += seen
        if got != expected:
            problems.append(f"counts {got}, expected {expected}")
    except Exception as e:  # junitparser or XML error: the file is unreadable to consumers
        problems.append(f"junitparser cannot read it: {e}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", help="directories of NAME.xml + NAME.expected.json, or JUnit files")
    ap.add_argument("--xsd", default=default_xsd(), help="the JUnit XSD (default: Fixtures/junit/junit-10.xsd)")
    ap.add_argument("--expect", type=parse_expect, help="counts for FILE arguments without a sidecar")
    ap.add_argument("--no-xmllint", action="store_true", help="skip the xmllint --schema check")
    args = ap.parse_args()
    paths = args.paths or [os.environ.get("PTFRAG_JUNIT_SAMPLES") or os.path.join(ROOT, ".build/junit-samples")]
    use_xmllint = not args.no_xmllint
    if use_xmllint and (args.xsd is None or not os.path.exists(args.xsd)):
        print(f"check-junit: XSD not found ({args.xsd})", file=sys.stderr)
        return 2
    if use_xmllint and shutil.which("xmllint") is None:
        print("check-junit: xmllint not found (apt-get install libxml2-utils)", file=sys.stderr)
        return 2

    files = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith(".xml"))
        else:
            files.append(p)
    if not files:
        print(f"check-junit: no JUnit file in {', '.join(paths)}: did the Swift tests run?", file=sys.stderr)
        return 1

    passed = failed = 0
    for f in files:
        sidecar = f[: -len(".xml")] + ".expected.json"
        if os.path.exists(sidecar):
            with open(sidecar, encoding="utf-8") as fh:
                expected = json.load(fh)
        elif args.expect is not None:
            expected = args.expect
        else:
            print(f"FAIL {f}: no {os.path.basename(sidecar)} and no --expect")
            failed += 1
            continue
        problems = check(f, {k: int(expected[k]) for k in KEYS}, args.xsd, use_xmllint)
        if problems:
            failed += 1
            print(f"FAIL {f}")
            for p in problems:
                print(f"     {p}")
        else:
            passed += 1
            print(f"ok   {f} ({', '.join(f'{k} {expected[k]}' for k in KEYS)})")
    print(f"check-junit: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
