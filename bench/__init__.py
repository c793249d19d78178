"""tidings benchmarks: `python -m bench <scenario>|all` (see docs/benchmarks.md).

Every scenario measures its ceiling in the same run (a bare aiohttp + uvloop loop posting the
same bodies, signed the same way, to the same receiver, with no storage) and reports its figures
as ratios to it, beside the absolute numbers."""
