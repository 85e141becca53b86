"""`nestctl bench`: measure what nesting costs at each level, and compare levels.

Modules: `stats` (medians, spreads, intervals, geometric means), `stub` (the executable-memory
helper for cpuid/rdtsc), `workloads` (the microbenchmarks), `where` (the measurement context),
`runner` (runs the set, writes the result file; standard library only, so it runs in a guest),
`published` (figures to compare against), `compare`, `plot`, `ship` and `remote` (running in a
guest through its agent), `feed` (what doctor and the metrics exporter read).
"""

#: Where `nestctl bench --save` keeps result files, and where doctor and the exporter look. Here,
#: not in `feed`, so that a check finding no files there never imports the bench modules.
RESULTS_DIR = "/var/lib/nestctl/bench"
